"""Multi-worker resume: two workers on loopback, both killed mid-run, resumed from the chief's
run folder, end exactly where an uninterrupted pair of workers ends."""

import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from seq2seq.data.sources import load_configured_splits as load_splits
from tests.conftest import REPO, compose
from tests.test_distribute import CHILD, TIMEOUT, TINY, _free_ports

RESUMABLE = [
    *TINY,
    "trainer.strategy=multi_worker",
    "trainer.epochs=3",
    "trainer.checkpoint_every_n_steps=4",
    "export=false",
]


def _start_cluster(run_dir, overrides, logs, other_run_dir=None):
    """Two worker processes given the same run folder (the chief's, as on a shared filesystem),
    or the second one `other_run_dir`."""
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    procs = []
    for i, folder in enumerate((run_dir, other_run_dir or run_dir)):
        tf_config = {"cluster": cluster, "task": {"type": "worker", "index": i}}
        log = open(logs / f"{run_dir.name}-{len(list(logs.iterdir()))}.log", "w")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", CHILD, json.dumps(overrides), str(folder)],
                cwd=REPO,
                env={**os.environ, "PYTHONPATH": str(REPO), "TF_CONFIG": json.dumps(tf_config)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        log.close()
    return procs


def _wait(procs, logs):
    for proc in procs:
        try:
            proc.wait(timeout=TIMEOUT)
        finally:
            proc.kill()
    return "\n".join(p.read_text()[-1500:] for p in sorted(logs.iterdir()))


def _kill_after_a_mid_epoch_checkpoint(procs, state_file):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and all(p.poll() is None for p in procs):
        if state_file.exists() and json.loads(state_file.read_text())["epoch_step"] > 0:
            break
        time.sleep(0.05)
    for proc in procs:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return json.loads(state_file.read_text())


def _weights(path):
    with h5py.File(path) as f:
        arrays = []
        f.visititems(lambda _, obj: arrays.append(obj[()]) if isinstance(obj, h5py.Dataset) else 0)
    return arrays


@pytest.mark.slow
def test_two_workers_killed_mid_epoch_resume_to_the_uninterrupted_result(tmp_path, tfds_dir):
    overrides = [*RESUMABLE, f"data.data_dir={tfds_dir}"]
    load_splits(compose(overrides).data)  # prepared once; the workers only read it
    logs = tmp_path / "logs"
    logs.mkdir()
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    uninterrupted = _start_cluster(whole, overrides, logs)
    interrupted = _start_cluster(killed, overrides, logs)
    saved = _kill_after_a_mid_epoch_checkpoint(
        interrupted, killed / "checkpoints" / "resume" / "state.json"
    )
    assert not (killed / "metrics.json").exists(), "the run ended before it could be killed"
    assert saved["epoch"] < 3 and saved["epoch_step"] > 0
    # A worker that cannot see the chief's run folder would start afresh: both refuse.
    mismatched = _start_cluster(killed, overrides, logs, other_run_dir=tmp_path / "elsewhere")
    output = _wait(mismatched, logs)
    assert [p.returncode for p in mismatched] == [1, 1], output
    assert "the workers resumed from different states" in output
    resumed = _start_cluster(killed, overrides, logs)  # the same command again
    for procs in (resumed, uninterrupted):
        output = _wait(procs, logs)
        assert all(p.returncode == 0 for p in procs), output

    a = json.loads((whole / "metrics.json").read_text())
    b = json.loads((killed / "metrics.json").read_text())
    assert b["replicas"] == 2 and b["epochs_completed"] == 3
    for x, y in zip(
        _weights(whole / "checkpoints" / "last.weights.h5"),
        _weights(killed / "checkpoints" / "last.weights.h5"),
    ):
        np.testing.assert_array_equal(x, y)
    assert [h["val_loss"] for h in b["history"]] == [h["val_loss"] for h in a["history"]]
    assert b["validation"]["bleu"] == a["validation"]["bleu"]
    # The other epochs report the same mean losses. The resumed epoch's mean is rebuilt from
    # metric totals read across the workers (sync-on-read variables) and written back: equal
    # to float32 rounding, not bit for bit.
    resumed_epoch = saved["epoch"]
    for epoch, (x, y) in enumerate(zip(a["history"], b["history"])):
        if epoch == resumed_epoch:
            assert y["loss"] == pytest.approx(x["loss"], rel=1e-3)
        else:
            assert y["loss"] == x["loss"], epoch
