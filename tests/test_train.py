import json

import pytest
import tensorflow as tf

from seq2seq.inference.exported import load_export
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
    assert saved["test"]["ter_signature"].startswith("nrefs:1|case:lc")  # sacreBLEU's default
    assert 0 <= saved["test"]["ter"] and 0 <= saved["test"]["exact_match"] <= 100
    by_group = saved["test"]["exact_match_by_group"]
    assert set(by_group) <= {"1 digit", "2 digits", "3 digits"} and len(by_group) >= 2
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
    assert trained["test"]["bleu"] > untrained["test"]["bleu"] + 10
    assert trained["test"]["chrf"] > untrained["test"]["chrf"] + 30


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
    the third evaluation, step 15 (in the second epoch of 9 batches)."""
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
    assert metrics["history"][0]["batches"] == 9
    assert metrics["epochs_completed"] == 2


def test_plateau_without_a_dev_schedule_evaluates_dev_bleu_every_epoch(tfds_dir, tmp_path):
    cfg = compose(
        [
            *TINY_NUMBERS,
            f"data.data_dir={tfds_dir}",
            "trainer.epochs=2",
            "trainer.schedule=plateau",
            "export=false",
        ]
    )
    assert cfg.trainer.bleu_every_n_epochs == 0 and cfg.trainer.bleu_every_n_steps == 0
    metrics = train(cfg, tmp_path)
    assert all("dev_bleu" in epoch for epoch in metrics["history"])
    assert "bleu_every_n_epochs: 1" in (tmp_path / "config.yaml").read_text()


@pytest.mark.slow
def test_a_small_numbers_model_gets_short_and_long_numbers_right(tfds_dir, tmp_path):
    """The demo's data has every length equally often (and round numbers): a model of the
    default architecture trained for a minute on numbers up to 99,999 gets every length right,
    one digit as five, and the inputs a user types first."""
    cfg = compose(
        [
            f"data.data_dir={tfds_dir}",
            "data.max_number=99999",
            "data.train_size=8000",
            "data.validation_size=50",
            "data.test_size=300",
            "data.tokenizer.vocab_size=200",
            "data.batch_tokens=768",
            "trainer.epochs=8",
            "trainer.tensorboard_samples=0",
        ]
    )
    metrics = train(cfg, tmp_path)
    by_group = metrics["test"]["exact_match_by_group"]
    assert list(by_group) == ["1 digit", "2 digits", "3 digits", "4 digits", "5 digits"]
    assert min(by_group.values()) >= 90, by_group
    inputs = {
        "sieben": "seven",
        "dreiundzwanzig": "twenty-three",
        "dreihundertfünfundvierzig": "three hundred and forty-five",
        "siebentausendzweihundert": "seven thousand, two hundred",
        "achtundachtzigtausendsechzehn": "eighty-eight thousand and sixteen",
    }
    translate = load_export(tmp_path / "export").signatures["serving_default"]
    got = translate(text=tf.constant(list(inputs)))["translation"].numpy()
    assert [t.decode() for t in got] == list(inputs.values())
