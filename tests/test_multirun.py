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
