"""Exact resume: a run killed (SIGKILL) or interrupted (Ctrl-C) mid-epoch, then re-run with the
same command and folder, ends exactly like an uninterrupted run: the same weights and the same
logged losses (deterministic ops on CPU)."""

import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from tests.conftest import REPO, TINY_NUMBERS

EPOCHS = 4


def _command(run_dir, tfds_dir):
    overrides = [
        *TINY_NUMBERS,
        f"data.data_dir={tfds_dir}",
        f"trainer.epochs={EPOCHS}",
        "model.dropout=0.2",
        "trainer.checkpoint_every_n_steps=3",
        "export=false",
        f"hydra.run.dir={run_dir}",
    ]
    return [sys.executable, "-m", "seq2seq.train", *overrides]


def _start(run_dir, tfds_dir):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_DETERMINISTIC_OPS": "1"}
    return subprocess.Popen(
        _command(run_dir, tfds_dir),
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run(run_dir, tfds_dir):
    proc = _start(run_dir, tfds_dir)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return out, err


def _saved(run_dir):
    """(complete epochs, batches done of the next one) of the saved resume state."""
    try:
        state = json.loads((run_dir / "checkpoints/resume/state.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return 0, 0
    return state["epoch"], state["epoch_step"]


def _stop_when(run_dir, tfds_dir, sig, moment):
    """Starts a run and sends `sig` as soon as `moment(run_dir)` is true."""
    proc = _start(run_dir, tfds_dir)
    deadline = time.monotonic() + 300
    while not moment(run_dir) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before the moment came"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def _stop_mid_epoch(run_dir, tfds_dir, sig):
    """Starts a run and sends `sig` once it has saved a state in the middle of epoch 2."""
    code, err = _stop_when(run_dir, tfds_dir, sig, lambda d: _saved(d) >= (1, 1))
    epoch, step = _saved(run_dir)
    assert epoch < EPOCHS and step > 0, "the stop did not come mid-epoch"
    return code, err


def _weights(run_dir):
    with h5py.File(run_dir / "checkpoints/last.weights.h5") as f:
        found = []
        f.visititems(
            lambda name, obj: found.append((name, obj[()])) if hasattr(obj, "shape") else None
        )
        return dict(found)


def _history(run_dir):
    return json.loads((run_dir / "metrics.json").read_text())["history"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tfds_dir):
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    _run(run_dir, tfds_dir)
    return run_dir


def _assert_same_run(resumed, uninterrupted):
    got, expected = _history(resumed), _history(uninterrupted)
    assert len(got) == EPOCHS
    for key in ("loss", "nll", "token_accuracy", "val_loss", "batches"):
        np.testing.assert_allclose(
            [h[key] for h in got], [h[key] for h in expected], rtol=1e-6, err_msg=key
        )
    expected_weights = _weights(uninterrupted)
    for name, value in _weights(resumed).items():
        np.testing.assert_allclose(value, expected_weights[name], atol=1e-6, err_msg=name)


@pytest.mark.slow
def test_sigkill_mid_epoch_then_rerun_ends_exactly_like_an_uninterrupted_run(
    uninterrupted, tfds_dir, tmp_path
):
    code, _ = _stop_mid_epoch(tmp_path, tfds_dir, signal.SIGKILL)
    assert code == -signal.SIGKILL
    _run(tmp_path, tfds_dir)
    _assert_same_run(tmp_path, uninterrupted)


@pytest.mark.slow
def test_ctrl_c_saves_mid_epoch_and_says_how_to_resume(uninterrupted, tfds_dir, tmp_path):
    code, err = _stop_mid_epoch(tmp_path, tfds_dir, signal.SIGINT)
    assert code == 130
    assert "run the same command with the same hydra.run.dir to resume" in err
    _run(tmp_path, tfds_dir)
    _assert_same_run(tmp_path, uninterrupted)


MOMENTS = {
    "data prepared, no checkpoint yet": lambda d: (d / "tokenizers/target.model").exists(),
    "just after an epoch's weights": lambda d: (d / "checkpoints/epoch_002.weights.h5").exists(),
    "training done, final evaluation": lambda d: _saved(d)[0] == EPOCHS,
}


@pytest.mark.slow
@pytest.mark.parametrize("moment", MOMENTS)
def test_sigkill_at_other_moments_then_rerun_ends_like_an_uninterrupted_run(
    uninterrupted, tfds_dir, tmp_path, moment
):
    code, _ = _stop_when(tmp_path, tfds_dir, signal.SIGKILL, MOMENTS[moment])
    assert code == -signal.SIGKILL
    assert not (tmp_path / "metrics.json").exists()
    _run(tmp_path, tfds_dir)
    _assert_same_run(tmp_path, uninterrupted)
