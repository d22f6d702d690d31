"""Bad input and faults: clear errors, and nothing already written is lost."""

import math

import keras
import numpy as np
import pytest

from seq2seq.files import atomic_write_bytes, writable_dir
from seq2seq.run_folder import RunFolder
from seq2seq.training import losses
from seq2seq.training.checkpoints import CheckpointKeeper
from seq2seq.training.run import train
from tests.conftest import TINY_NUMBERS, compose


def test_nan_loss_stops_with_a_clear_message_and_writes_no_checkpoint(
    tfds_dir, tmp_path, monkeypatch
):
    monkeypatch.setattr(
        losses.MaskedCrossEntropy,
        "call",
        lambda self, y_true, y_pred: keras.ops.sum(y_pred) * np.nan,
    )
    cfg = compose([*TINY_NUMBERS, f"data.data_dir={tfds_dir}", "trainer.epochs=2"])
    with pytest.raises(FloatingPointError, match=r"loss became nan at step 1; the last good"):
        train(cfg, tmp_path)
    assert not (tmp_path / "checkpoints" / "last.weights.h5").exists()


def test_checkpoint_is_not_overwritten_by_a_non_finite_epoch(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    callback = CheckpointKeeper(tmp_path, keep=0)
    callback.set_model(model)
    callback.on_epoch_end(0, {"loss": 1.0, "val_loss": 1.0})
    last = RunFolder(tmp_path).last_weights
    good = last.read_bytes()
    model.layers[0].kernel.assign(np.full((2, 1), math.nan))
    callback.on_epoch_end(1, {"loss": math.nan, "val_loss": math.nan})
    assert last.read_bytes() == good
    assert not list(last.parent.glob(".*tmp*"))


def test_atomic_write_keeps_the_old_file_when_the_write_fails(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    atomic_write_bytes(path, b"old")

    def disk_full(fd):
        raise OSError("disk full")

    monkeypatch.setattr("seq2seq.files.os.fsync", disk_full)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_unwritable_output_folder_names_the_setting(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError, match=r"hydra.run.dir=.*cannot be written"):
        writable_dir(blocker / "run", "hydra.run.dir")


WRITER = """
import sys, numpy as np, keras
from pathlib import Path
from seq2seq.model.weights import save_weights
from seq2seq.files import atomic_write_bytes, replace_dir
out = Path(sys.argv[1])
model = keras.Sequential([keras.Input((1000,)), keras.layers.Dense(1000), keras.layers.Dense(1000)])
for version in range(1, 10**6):
    for w in model.weights:
        w.assign(np.full(w.shape, version, "float32"))
    save_weights(model, out / "last.weights.h5")
    atomic_write_bytes(out / "blob.bin", bytes([version % 256]) * 8_000_000)
    tmp = out / ".export.tmp"
    tmp.mkdir()
    (tmp / "a.bin").write_bytes(bytes([version % 256]) * 4_000_000)
    (tmp / "b.bin").write_bytes(bytes([version % 256]) * 4_000_000)
    replace_dir(tmp, out / "export")
    if version == 1:
        print("ready", flush=True)
"""


def _kill_while_writing(out, delay):
    import subprocess
    import sys
    import time

    from tests.conftest import REPO

    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(out)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(delay)
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.13, 0.31])
def test_a_process_killed_while_writing_leaves_complete_files(tmp_path, delay):
    import h5py

    from seq2seq.files import recover_dir
    from seq2seq.model.weights import remove_stale_temp_files

    _kill_while_writing(tmp_path, delay)
    with h5py.File(tmp_path / "last.weights.h5") as f:
        values = []
        f.visititems(lambda _, obj: values.append(obj[()]) if hasattr(obj, "shape") else None)
    versions = {float(np.unique(v).item()) for v in values}
    assert len(values) == 4 and len(versions) == 1, "a weights file mixes two writes"
    blob = (tmp_path / "blob.bin").read_bytes()
    assert len(blob) == 8_000_000 and len(set(blob)) == 1
    recover_dir(tmp_path / "export")
    parts = [(tmp_path / "export" / name).read_bytes() for name in ("a.bin", "b.bin")]
    assert [len(p) for p in parts] == [4_000_000] * 2 and len(set(parts[0] + parts[1])) == 1
    remove_stale_temp_files(tmp_path)
    assert not list(tmp_path.glob(".*.tmp.weights.h5"))


def test_recover_dir_puts_back_the_copy_parked_by_an_interrupted_replacement(tmp_path):
    from seq2seq.files import recover_dir, replace_dir

    (tmp_path / ".export.old").mkdir()
    (tmp_path / ".export.old" / "saved_model.pb").write_text("previous")
    recover_dir(tmp_path / "export")
    assert (tmp_path / "export" / "saved_model.pb").read_text() == "previous"
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "saved_model.pb").write_text("new")
    replace_dir(tmp_path / "new", tmp_path / "export")
    assert (tmp_path / "export" / "saved_model.pb").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_loading_never_unpickles_or_runs_saved_code():
    """Models come back through .weights.h5 (h5py arrays), tf.saved_model.load (a graph, no
    Python), SentencePiece protos and JSON. Nothing in the package may load pickles, Keras
    archives with safe_mode off, or evaluate text."""
    import re

    from tests.conftest import REPO

    unsafe = re.compile(
        r"\bpickle\b|\bdill\b|allow_pickle\s*=\s*True|safe_mode\s*=\s*False|"
        r"enable_unsafe_deserialization|\beval\(|\bexec\(|yaml\.load\(|"
        r"yaml\.unsafe_load|load_model\("
    )
    found = []
    for path in (REPO / "seq2seq").rglob("*.py"):
        lines = path.read_text().splitlines()
        found += [f"{path.name}:{n}" for n, line in enumerate(lines, 1) if unsafe.search(line)]
    assert not found


def test_training_set_empty_after_filtering_is_a_clear_error(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for split in ("train", "dev", "test"):
        (raw / f"{split}.de").write_text("Hallo Welt\nTschau\n")
        (raw / f"{split}.en").write_text("\n   \n" if split == "train" else "hi\nbye\n")
    overrides = [
        "data=text",
        "model=tiny",
        f"data.data_dir={tmp_path / 'tfds'}",
        f"data.train_prefix={raw / 'train'}",
        f"data.validation_prefix={raw / 'dev'}",
        f"data.test_prefix={raw / 'test'}",
        "data.source_language=de",
        "data.target_language=en",
        "data.tokenizer.vocab_size=20",
    ]
    with pytest.raises(ValueError, match="training set is empty after dropping empty"):
        train(compose(overrides), tmp_path / "run")


def test_an_export_that_fails_verification_leaves_the_previous_one(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from seq2seq.inference import export

    previous = tmp_path / "export"
    previous.mkdir()
    (previous / "saved_model.pb").write_bytes(b"the previous good export")

    def broken_archive(_, out_dir):
        (out_dir / "saved_model.pb").write_bytes(b"not a graph")

    monkeypatch.setattr(export, "_write_archive", broken_archive)
    translator = SimpleNamespace(model=SimpleNamespace(lstm_layers=lambda: [], weights=[]))
    with pytest.raises(Exception):  # noqa: B017 (whatever TensorFlow raises on a broken file)
        export.export_saved_model(translator, previous)
    assert (previous / "saved_model.pb").read_bytes() == b"the previous good export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]
