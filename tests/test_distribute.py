"""trainer.strategy: mirrored on 2 logical CPU devices, multi-worker on loopback, bad names.

The trainings run in subprocesses, all started at once (the CPU split must happen before
TensorFlow starts, and must not leak into this process).

The single-device reference is MirroredStrategy on one device, not `default`: under any
strategy Keras 3.15 reads one batch of a fresh pass before training (`_maybe_symbolic_build`),
so every epoch sees the next shuffle order, which alone moves this tiny run's loss by ~3%.
"""

import json
import os
import socket
import subprocess
import sys

import pytest

from seq2seq.data.sources import load_configured_splits as load_splits
from seq2seq.training.distribute import CPU_DEVICES_ENV
from seq2seq.training.run import train
from tests.conftest import REPO, TINY_NUMBERS, compose

CHILD = "import json, sys; from seq2seq.training.run import train; "
CHILD += "from tests.conftest import compose; "
CHILD += "train(compose(json.loads(sys.argv[1])), sys.argv[2])"
# Equal global batches (32 sentences, even), no dropout in model=tiny, 2 epochs.
TINY = [
    *TINY_NUMBERS,
    "trainer.epochs=2",
    "data.batch_sentences=32",
    "trainer.tensorboard_samples=0",
]
TIMEOUT = 240


def _start(name, overrides, tmp, **env):
    run_dir = tmp / name
    log = open(tmp / f"{name}.log", "w")  # closed by _finish or the fixture
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(overrides), str(run_dir)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return proc, log, run_dir


def _finish(started):
    proc, log, run_dir = started
    try:
        proc.wait(timeout=TIMEOUT)
    finally:
        proc.kill()
        log.close()
    output = open(log.name).read()
    assert proc.returncode == 0, output[-3000:]
    return run_dir


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tfds_dir):
    """Starts every training at once: single device, mirrored, and 2 multi-worker processes."""
    tmp = tmp_path_factory.mktemp("distribute")
    tiny = [*TINY, f"data.data_dir={tfds_dir}"]
    load_splits(compose(tiny).data)  # prepares the data once; the children only read it
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    started = {
        "single": _start("single", [*tiny, "export=false", "trainer.strategy=mirrored"], tmp),
        "mirrored": _start(
            "mirrored",
            [*tiny, "export=false", "trainer.strategy=mirrored"],
            tmp,
            **{CPU_DEVICES_ENV: "2"},
        ),
    }
    for i in range(2):
        # Only worker 1 has a time budget (a single batch): the chief must stop with it.
        budget = "trainer.max_minutes=0.0001" if i else "trainer.max_minutes=null"
        tf_config = {"cluster": cluster, "task": {"type": "worker", "index": i}}
        started[f"worker{i}"] = _start(
            f"worker{i}",
            [*tiny, "trainer.strategy=multi_worker", budget],
            tmp,
            TF_CONFIG=json.dumps(tf_config),
        )
    yield started
    for proc, log, _ in started.values():
        proc.kill()
        log.close()


def _metrics(run_dir):
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.mark.slow
def test_mirrored_on_two_cpu_devices_reaches_the_single_device_loss(runs):
    single = _metrics(_finish(runs["single"]))
    mirrored = _metrics(_finish(runs["mirrored"]))
    assert (single["replicas"], mirrored["replicas"]) == (1, 2)
    assert mirrored["strategy"] == "mirrored" and mirrored["epochs_completed"] == 2
    for key in ("loss", "nll"):
        a, b = single["history"][-1][key], mirrored["history"][-1][key]
        print(f"final training {key}: single device {a:.4f}, mirrored x2 {b:.4f}")  # pytest -rP
        assert abs(a - b) / a < 0.02, (key, a, b)


@pytest.mark.slow
def test_mirrored_validation_loss_matches_the_single_device(runs):
    single = _metrics(_finish(runs["single"]))["history"][-1]["val_loss"]
    mirrored = _metrics(_finish(runs["mirrored"]))["history"][-1]["val_loss"]
    print(f"final val_loss: single device {single:.4f}, mirrored x2 {mirrored:.4f}")
    assert abs(single - mirrored) / single < 0.1, (single, mirrored)


@pytest.mark.slow
def test_two_workers_on_loopback_train_together_and_only_the_chief_writes(runs):
    chief = _finish(runs["worker0"])
    other = _finish(runs["worker1"])
    metrics = _metrics(chief)
    assert metrics["replicas"] == 2 and metrics["strategy"] == "multi_worker"
    # worker 1's time budget stopped both after the first batch; epochs=2 otherwise
    assert metrics["epochs_completed"] == 1 and not metrics["stopped_by_time_budget"]
    assert (chief / "export" / "saved_model.pb").exists()
    assert (chief / "checkpoints" / "last.weights.h5").exists()
    assert not other.exists()  # the other worker wrote to a temporary folder, now removed


def test_unknown_strategy_name_fails_naming_the_setting(tmp_path):
    cfg = compose([*TINY_NUMBERS, "trainer.strategy=horovod"])
    with pytest.raises(ValueError, match=r"trainer.strategy='horovod' is unknown; choose one of"):
        train(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()
