"""`python -m seq2seq.train -m ...`: a Hydra sweep gives one complete run folder per job."""

import json
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO, TINY_NUMBERS


@pytest.mark.slow
def test_sweep_writes_one_complete_run_folder_per_job(tfds_dir, tmp_path):
    overrides = [o for o in TINY_NUMBERS if not o.startswith("trainer.epochs")]
    command = [
        sys.executable,
        "-m",
        "seq2seq.train",
        "-m",
        "model.attention=general,bahdanau",
        *overrides,
        "trainer.epochs=1",
        f"data.data_dir={tfds_dir}",
        f"hydra.sweep.dir={tmp_path}",
    ]
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    attentions = []
    for job in ("0", "1"):
        run = tmp_path / job
        assert json.loads((run / "metrics.json").read_text())["test"]["bleu"] >= 0
        assert (run / "export" / "saved_model.pb").exists()
        attentions.append(yaml.safe_load((run / "config.yaml").read_text())["model"]["attention"])
    assert attentions == ["general", "bahdanau"]
    log = (tmp_path / "0" / "train.log").read_text()
    assert "epoch 1/1: loss" in log and "training SentencePiece" in log
    for noise in ("cudart_stub", "absl::InitializeLog", "oneDNN custom operations"):
        assert noise not in proc.stderr + proc.stdout


@pytest.mark.slow
def test_an_optuna_sweep_maximizes_validation_bleu_never_test(tfds_dir, tmp_path):
    overrides = [o for o in TINY_NUMBERS if not o.startswith(("trainer.epochs", "trainer.learn"))]
    command = [
        sys.executable,
        "-m",
        "seq2seq.train",
        "-m",
        "hydra/sweeper=optuna",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.direction=maximize",
        "hydra.sweeper.sampler.seed=0",
        "trainer.learning_rate=choice(0.0001,0.01)",
        *overrides,
        "trainer.epochs=2",
        "export=false",
        f"data.data_dir={tfds_dir}",
        f"hydra.sweep.dir={tmp_path}",
    ]
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = [json.loads((tmp_path / job / "metrics.json").read_text()) for job in ("0", "1")]
    best = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())["best_value"]
    assert best == max(trial["validation"]["bleu"] for trial in trials)
