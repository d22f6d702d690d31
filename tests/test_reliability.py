"""Bad input and faults: clear errors, and nothing already written is lost."""

import math

import keras
import numpy as np
import pytest

from seq2seq import losses
from seq2seq.checkpoints import CheckpointKeeper
from seq2seq.files import atomic_write_bytes, writable_dir
from seq2seq.train import train
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
    good = (tmp_path / "last.weights.h5").read_bytes()
    model.layers[0].kernel.assign(np.full((2, 1), math.nan))
    callback.on_epoch_end(1, {"loss": math.nan, "val_loss": math.nan})
    assert (tmp_path / "last.weights.h5").read_bytes() == good
    assert not list(tmp_path.glob(".*tmp*"))


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
