"""Exact resume with the training features on: sampled segmentations, gradient accumulation
(a partial accumulation in the saved state), the moving average and source word dropout. A run
SIGKILLed mid-epoch and re-run ends exactly like an uninterrupted one (tests/test_resume.py)."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import REPO, TINY_NUMBERS
from tests.test_resume import _history, _saved, _weights

EPOCHS = 3
FEATURES = [
    "data.tokenizer.sample_alpha=0.1",
    "trainer.accumulate_steps=2",
    "trainer.ema_decay=0.9",
    "model.source_word_dropout=0.1",
    "model.dropout=0.2",
    "trainer.checkpoint_every_n_steps=2",  # updates: every 4 batches
]


def _start(run_dir, tfds_dir):
    overrides = [
        *TINY_NUMBERS,
        *FEATURES,
        f"data.data_dir={tfds_dir}",
        f"trainer.epochs={EPOCHS}",
        "export=false",
        f"hydra.run.dir={run_dir}",
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_DETERMINISTIC_OPS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "seq2seq.train", *overrides],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run(run_dir, tfds_dir):
    proc = _start(run_dir, tfds_dir)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]


@pytest.mark.slow
def test_sigkill_mid_epoch_with_every_feature_then_rerun_ends_like_an_uninterrupted_run(
    tfds_dir, tmp_path
):
    uninterrupted, resumed = tmp_path / "uninterrupted", tmp_path / "resumed"
    _run(uninterrupted, tfds_dir)
    proc = _start(resumed, tfds_dir)
    deadline = time.monotonic() + 300
    while _saved(resumed) < (1, 1) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before a mid-epoch state was saved"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=120)
    epoch, step = _saved(resumed)
    assert epoch < EPOCHS and step % 2 == 0 and step > 0  # saved right after an update
    _run(resumed, tfds_dir)
    got, expected = _history(resumed), _history(uninterrupted)
    assert len(got) == EPOCHS
    for key in ("loss", "nll", "token_accuracy", "val_loss", "batches"):
        np.testing.assert_allclose(
            [h[key] for h in got], [h[key] for h in expected], rtol=1e-6, err_msg=key
        )
    expected_weights = _weights(uninterrupted)  # the moving average's
    for name, value in _weights(resumed).items():
        np.testing.assert_allclose(value, expected_weights[name], atol=1e-6, err_msg=name)
