"""The training features end to end on a tiny run: subword sampling, pair filters, gradient
accumulation and the moving average in one run; averaging its checkpoints (the CLI, a fresh
process) and starting a new run from its weights."""

import argparse
import json
import subprocess
import sys

import h5py
import numpy as np
import pytest
import tensorflow as tf

from seq2seq import average as average_cli
from seq2seq.cli import UsageError
from seq2seq.run_folder import RunFolder
from seq2seq.training.run import train
from tests.conftest import REPO, TINY_NUMBERS, compose

FEATURES = [
    "trainer.ema_decay=0.9",
    "trainer.accumulate_steps=2",
    "data.tokenizer.sample_alpha=0.1",
    "data.drop_long_pairs=true",
    "data.max_length_ratio=4",
    "trainer.keep_checkpoints=2",
    "trainer.epochs=2",
]


@pytest.fixture(scope="module")
def features_run(tmp_path_factory, tfds_dir):
    run_dir = tmp_path_factory.mktemp("features_run")
    cfg = compose([*TINY_NUMBERS, *FEATURES, f"data.data_dir={tfds_dir}"])
    return run_dir, train(cfg, run_dir)


def _arrays(path):
    """The datasets of a weights file, in file order."""
    found = []

    def visit(_, item):
        if isinstance(item, h5py.Dataset):
            found.append(item[()])

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return found


def _checkpoint_tensors(run_dir, prefix):
    reader = tf.train.load_checkpoint(str(RunFolder(run_dir).resume))
    keys = [k for k in reader.get_variable_to_shape_map() if k.startswith(prefix)]
    return [reader.get_tensor(k) for k in keys if k.endswith("VARIABLE_VALUE")]


def _holds(arrays, wanted):
    return any(a.shape == wanted.shape and np.allclose(a, wanted, atol=1e-7) for a in arrays)


def test_the_checkpoints_hold_the_moving_average_not_the_trained_weights(features_run):
    run_dir, metrics = features_run
    assert metrics["final_weights"] == "last (moving average)"
    assert {"too_long", "length_ratio"} <= metrics["data"].keys()
    saved = _arrays(RunFolder(run_dir).last_weights)
    averages = _checkpoint_tensors(run_dir, "weight_average/averages")
    trained = [
        w for w in _checkpoint_tensors(run_dir, "optimizer/_trainable_variables") if w.size > 100
    ]
    assert len(averages) > 5 and len(trained) > 5
    assert all(_holds(saved, a) for a in averages)
    assert not any(_holds(saved, w) for w in trained)
    exported = tf.train.load_checkpoint(str(RunFolder(run_dir).export / "variables/variables"))
    weights = [k for k in exported.get_variable_to_shape_map() if k.endswith("VARIABLE_VALUE")]
    assert len(weights) == len(saved)  # the export holds no averages or accumulated gradients


def test_the_average_command_averages_the_last_checkpoints_and_exports_them(features_run, tmp_path):
    run_dir, _ = features_run
    out = tmp_path / "averaged"
    proc = subprocess.run(
        [sys.executable, "-m", "seq2seq.average", str(run_dir), "--last", "2", "--export", out],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    written = RunFolder(run_dir).checkpoints / "average_last_2.weights.h5"
    assert proc.stdout.strip() == str(written)
    epochs = [_arrays(RunFolder(run_dir).epoch_weights(e)) for e in (1, 2)]
    for got, a, b in zip(_arrays(written), *epochs):
        np.testing.assert_allclose(got, (a.astype(np.float64) + b) / 2, rtol=1e-6, atol=1e-7)
    evaluated = subprocess.run(
        [sys.executable, "-m", "seq2seq.evaluate", "--model", out, "--split", "test", "--quiet"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    report = json.loads((out / "evaluation_test.json").read_text())
    assert report["sentences"] == 40


def _args(*items, last=None, output=None):
    return argparse.Namespace(items=[str(i) for i in items], last=last, output=output, export=None)


def test_the_average_command_names_what_is_wrong(features_run, tmp_path):
    run_dir, _ = features_run
    with pytest.raises(UsageError, match="--last 9: .* has 2 epoch checkpoints"):
        average_cli.checkpoints_to_average(_args(run_dir, last=9))
    stray = tmp_path / "a.weights.h5"
    stray.write_bytes(b"")
    with pytest.raises(UsageError, match="not in a run folder's checkpoints"):
        average_cli.checkpoints_to_average(_args(stray, output=tmp_path / "x.weights.h5"))
    files = [RunFolder(run_dir).epoch_weights(e) for e in (1, 2)]
    with pytest.raises(UsageError, match="--output FILE is needed"):
        average_cli.checkpoints_to_average(_args(*files))
    folder, paths, _ = average_cli.checkpoints_to_average(_args(*files, output=stray))
    assert folder.path == run_dir and paths == files


def test_a_run_initialized_from_another_starts_from_its_final_weights(
    features_run, tfds_dir, tmp_path
):
    run_dir, _ = features_run
    new = RunFolder(tmp_path / "fine_tuned")
    overrides = [f"data.data_dir={tfds_dir}", f"trainer.init_from={run_dir}", "trainer.epochs=0"]
    train(compose([*TINY_NUMBERS, *overrides, "trainer.learning_rate=0.001"]), new.path)
    # No training: the same weights translate the test set as the first run's final ones.
    assert new.test_hypotheses.read_text() == RunFolder(run_dir).test_hypotheses.read_text()
    for side in ("source", "target"):
        model = RunFolder(run_dir).tokenizer_model(side)
        assert new.tokenizer_model(side).read_bytes() == model.read_bytes()


def test_another_architecture_is_refused_before_any_work(features_run, tmp_path):
    run_dir, _ = features_run
    cfg = compose([*TINY_NUMBERS, "model.units=32", f"trainer.init_from={run_dir}"])
    with pytest.raises(ValueError, match=r"model.units \(64 there, 32 here\)"):
        train(cfg, tmp_path / "other")
    assert not (tmp_path / "other" / "config.yaml").exists()
    with pytest.raises(ValueError, match="trainer.init_from=.*: not a run folder"):
        train(compose([*TINY_NUMBERS, f"trainer.init_from={tmp_path}"]), tmp_path / "third")
