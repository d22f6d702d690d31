import json

import pytest

from seq2seq.training.run import train
from tests.conftest import TINY_NUMBERS, compose


def test_run_folder_holds_everything(tiny_run):
    run_dir, metrics, _ = tiny_run
    for name in (
        "config.yaml",
        "metrics.json",
        "test_hypotheses.txt",
        "tokenizers/source.model",
        "tokenizers/target.model",
        "checkpoints/last.weights.h5",
        "export/saved_model.pb",
    ):
        assert (run_dir / name).exists(), name
    assert list((run_dir / "tensorboard" / "train").glob("events.out.tfevents.*"))
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["test"]["bleu_signature"].startswith("nrefs:1|case:mixed")
    assert 0 <= saved["test"]["exact_match"] <= 100
    assert saved["epochs_completed"] == 8
    assert metrics["target_tokens_per_second"] > 0
    # dev BLEU every 4 epochs, recorded beside that epoch's losses
    with_bleu = [i + 1 for i, epoch in enumerate(saved["history"]) if "dev_bleu" in epoch]
    assert with_bleu == [4, 8]
    assert all(0 <= saved["history"][i - 1]["dev_bleu"] <= 100 for i in with_bleu)


@pytest.mark.slow
def test_training_raises_bleu_clearly_above_an_untrained_model(tiny_run, tfds_dir, tmp_path):
    _, trained, _ = tiny_run
    untrained = train(
        compose([*TINY_NUMBERS, f"data.data_dir={tfds_dir}", "trainer.epochs=0", "export=false"]),
        tmp_path,
    )
    assert trained["test"]["bleu"] > untrained["test"]["bleu"] + 20
    assert trained["test"]["chrf"] > untrained["test"]["chrf"] + 20


def test_time_budget_stops_training_cleanly_and_still_exports(tfds_dir, tmp_path):
    cfg = compose(
        [
            *TINY_NUMBERS,
            f"data.data_dir={tfds_dir}",
            "trainer.epochs=50",
            "trainer.max_minutes=0.0001",
        ]
    )
    metrics = train(cfg, tmp_path)
    assert metrics["stopped_by_time_budget"] and metrics["epochs_completed"] == 1
    assert (tmp_path / "export" / "saved_model.pb").exists()


def test_early_stopping_on_dev_bleu_every_n_steps(tfds_dir, tmp_path, caplog):
    """With a learning rate of 0 the dev BLEU never improves: patience 2 stops the run at
    the third evaluation, step 15, the last batch of epoch 1 (whose on_train_batch_end Keras
    skips: the evaluation comes at the epoch end)."""
    cfg = compose(
        [
            *TINY_NUMBERS,
            f"data.data_dir={tfds_dir}",
            "trainer.learning_rate=0.0",
            "trainer.bleu_every_n_steps=5",
            "trainer.early_stopping_patience=2",
            "export=false",
        ]
    )
    with caplog.at_level("INFO", logger="seq2seq.training"):
        metrics = train(cfg, tmp_path)
    steps = [int(m.split()[1][:-1]) for m in caplog.messages if m.startswith("step ")]
    assert steps == [5, 10, 15]
    assert any("early stopping: no better dev BLEU" in m for m in caplog.messages)
    assert metrics["epochs_completed"] == 1
