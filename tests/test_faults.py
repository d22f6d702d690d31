"""Faults a clumsy or hostile user meets: each ends in one line, and nothing good is lost."""

import gzip
import json
import math
import re
import shutil
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from seq2seq.run_folder import RunFolder, RunFolderInUse
from seq2seq.training.checkpoints import CheckpointKeeper
from seq2seq.training.run import train
from seq2seq.training.stopping import StopConditions
from tests.conftest import REPO, TINY_NUMBERS, compose

ONE_EPOCH = [*TINY_NUMBERS, "trainer.epochs=1", "export=false"]
SEPARATORS = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


def _text_corpus(folder, *, end="\n", gz=False):
    """Parallel files whose lines hold every character str.splitlines would break at."""
    folder.mkdir(parents=True, exist_ok=True)
    pairs = [(f"hallo{s}welt {i}", f"hello{s}world {i}") for i in range(40) for s in SEPARATORS]
    for split in ("train", "dev", "test"):
        for side, lang in ((0, "de"), (1, "en")):
            data = end.join(pair[side] for pair in pairs).encode("utf-8") + end.encode()
            path = folder / (f"{split}.{lang}" + (".gz" if gz else ""))
            path.write_bytes(gzip.compress(data) if gz else data)
    return len(pairs)


def _text_overrides(tmp_path, raw):
    return [
        "data=text",
        "model=tiny",
        f"data.data_dir={tmp_path / 'tfds'}",
        f"data.train_prefix={raw / 'train'}",
        f"data.validation_prefix={raw / 'dev'}",
        f"data.test_prefix={raw / 'test'}",
        "data.source_language=de",
        "data.target_language=en",
        "data.tokenizer.vocab_size=60",
        "trainer.epochs=1",
        "export=false",
    ]


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
def test_text_with_every_line_separator_trains_with_its_pairs_aligned(tmp_path, end):
    count = _text_corpus(tmp_path / "raw", end=end)
    metrics = train(compose(_text_overrides(tmp_path, tmp_path / "raw")), tmp_path / "run")
    assert metrics["data"]["pairs"] == count
    assert metrics["test"]["sentences"] == count


def test_a_truncated_gzip_training_file_is_named(tmp_path):
    raw = tmp_path / "raw"
    _text_corpus(raw)
    whole = gzip.compress((raw / "train.de").read_bytes() * 20)
    (raw / "train.de").unlink()
    (raw / "train.de.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match=r"train\.de\.gz: broken gzip file"):
        train(compose(_text_overrides(tmp_path, raw)), tmp_path / "run")


def test_a_second_training_in_the_same_run_folder_is_refused_naming_the_first(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from seq2seq.run_folder import RunLock\n"
            "with RunLock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)",
            str(tmp_path),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunFolderInUse, match=rf"is in use by process {holder.pid} on"):
            train(compose([*ONE_EPOCH]), tmp_path)
        assert not (tmp_path / "config.yaml").exists()
    finally:
        holder.kill()
        holder.wait()


@pytest.fixture(scope="module")
def one_epoch_run(tmp_path_factory, tfds_dir):
    run = tmp_path_factory.mktemp("one_epoch")
    train(compose([*ONE_EPOCH, f"data.data_dir={tfds_dir}"]), run)
    return run


@pytest.mark.parametrize(
    "override, listed",
    [
        ("model.units=32", "model.units (64 -> 32)"),
        ("data.tokenizer.vocab_size=80", "data.tokenizer.vocab_size (60 -> 80)"),
        ("trainer.learning_rate=0.02", "trainer.learning_rate (0.01 -> 0.02)"),
        ("seed=7", "seed (1234 -> 7)"),
    ],
)
def test_a_continued_run_refuses_settings_it_cannot_honour(
    one_epoch_run, tfds_dir, tmp_path, override, listed
):
    run = tmp_path / "run"
    shutil.copytree(one_epoch_run, run)
    before = (run / "config.yaml").read_text()
    with pytest.raises(ValueError, match=r"cannot change: " + re.escape(listed)):
        train(compose([*ONE_EPOCH, f"data.data_dir={tfds_dir}", override]), run)
    assert (run / "config.yaml").read_text() == before  # nothing rewritten


def test_a_continued_run_applies_the_settings_that_may_change(one_epoch_run, tfds_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(one_epoch_run, run)
    cfg = compose(
        [*ONE_EPOCH, f"data.data_dir={tfds_dir}", "trainer.epochs=2", "decode.beam_size=2"]
    )
    metrics = train(cfg, run)
    assert metrics["epochs_completed"] == 2
    assert "epochs: 2" in (run / "config.yaml").read_text()


def test_a_diverging_loss_stops_training_before_any_weights_are_written(tfds_dir, tmp_path):
    cfg = compose(
        [
            *TINY_NUMBERS,
            f"data.data_dir={tfds_dir}",
            "trainer.learning_rate=1000000",
            "trainer.clipnorm=null",
            "trainer.epochs=3",
        ]
    )
    with pytest.raises(FloatingPointError, match=r"training stopped: the loss (diverged|became)"):
        train(cfg, tmp_path)
    assert not RunFolder(tmp_path).last_weights.exists()
    assert not RunFolder(tmp_path).export.exists()


def _model():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_a_diverged_epoch_does_not_replace_the_last_good_weights(tmp_path):
    model = _model()
    stop = StopConditions(loss_ceiling=10.0)
    keeper = CheckpointKeeper(tmp_path, keep=2, stop=stop)
    for callback in (stop, keeper):
        callback.set_model(model)
    keeper.on_epoch_end(0, {"loss": 1.0, "val_loss": 1.0})
    good = RunFolder(tmp_path).last_weights.read_bytes()
    model.layers[0].kernel.assign(np.full((2, 1), 1e30))
    stop.on_train_batch_end(0, {"loss": 5e8})  # finite, but far beyond a uniform guess
    keeper.on_dev_bleu(99.0)
    keeper.on_epoch_end(1, {"loss": 5e8, "val_loss": 5e8})
    assert "diverged" in stop.failure["why"] and model.stop_training
    assert RunFolder(tmp_path).last_weights.read_bytes() == good
    assert not RunFolder(tmp_path).epoch_weights(2).exists()
    assert not RunFolder(tmp_path).best_weights.exists() or keeper.best_bleu < 99.0


def test_non_finite_weights_are_caught_at_the_epoch_end():
    model = _model()
    stop = StopConditions()
    stop.set_model(model)
    stop.on_epoch_end(0, {"loss": 1.0})
    assert stop.healthy
    model.layers[0].bias.assign([math.inf])
    stop.on_epoch_end(1, {"loss": 1.0})
    assert stop.failure["why"] == "a weight became non-finite"


def test_checkpoints_hold_the_weights_only(one_epoch_run):
    import h5py

    with h5py.File(RunFolder(one_epoch_run).last_weights) as f:
        names = []
        f.visititems(lambda name, obj: names.append(name) if hasattr(obj, "shape") else None)
    assert names and not [n for n in names if "optimizer" in n]
    params = json.loads((one_epoch_run / "metrics.json").read_text())["parameters"]
    size = RunFolder(one_epoch_run).last_weights.stat().st_size
    assert size < 1.5 * 4 * params  # float32 weights and the file's own structure


@pytest.fixture()
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1200k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_ends_in_one_line_and_keeps_what_was_written(small_disk, tfds_dir):
    run = small_disk / "run"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "seq2seq.train",
            *ONE_EPOCH,
            "trainer.epochs=3",
            "export=true",
            f"data.data_dir={tfds_dir}",
            f"hydra.run.dir={run}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("seq2seq.train: error: ") and "MiB free" in last, proc.stderr[-2000:]
    for path in (run / "config.yaml", run / "tokenizers" / "source.model"):
        assert path.stat().st_size > 0
    assert not list(run.rglob(".*.tmp*"))


def test_translate_on_a_corrupt_export_is_one_line_exit_2(tiny_run, tmp_path):
    broken = tmp_path / "export"
    shutil.copytree(tiny_run[0] / "export", broken)
    (broken / "saved_model.pb").write_bytes(b"\x00 not a graph")
    proc = subprocess.run(
        [sys.executable, "-m", "seq2seq.translate", "--model", str(broken), "--quiet"],
        input="sieben\n",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert f"{broken}: cannot load the SavedModel" in proc.stderr


def test_translate_uses_the_export_parked_by_a_killed_replacement(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run[0] / "export", run / ".export.old")
    shutil.copy(tiny_run[0] / "config.yaml", run / "config.yaml")
    proc = subprocess.run(
        [sys.executable, "-m", "seq2seq.translate", "--model", str(run), "--quiet"],
        input="sieben\n",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip()


def test_the_lock_goes_with_a_killed_process(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from seq2seq.run_folder import RunLock\n"
            "with RunLock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)",
            str(tmp_path),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    holder.kill()
    holder.wait()
    time.sleep(0.1)
    from seq2seq.run_folder import RunLock

    with RunLock(tmp_path):  # taken at once: nothing stale is left
        pass
