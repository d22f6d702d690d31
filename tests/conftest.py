import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
MULTI30K = REPO.parent / "shared" / "data" / "multi30k"


def compose(overrides=()):
    """The composed training config, exactly as `python -m seq2seq.train` builds it."""
    from seq2seq.config import compose as compose_config

    return compose_config(overrides)


TINY_NUMBERS = [
    "model=tiny",
    "model.units=64",
    "model.embedding_dim=32",
    "data.train_size=600",
    "data.validation_size=40",
    "data.test_size=40",
    "data.max_number=999",
    "data.tokenizer.vocab_size=60",
    "data.batch_tokens=384",  # 9 batches an epoch
    "trainer.epochs=8",
    "trainer.learning_rate=0.01",
    "trainer.log_every_n_steps=5",
]


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory):
    """One TFDS data_dir for the whole session, so each data set is prepared once."""
    return tmp_path_factory.mktemp("tfds")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tfds_dir):
    """A tiny numbers model trained once and exported: (run_dir, metrics, cfg)."""
    from seq2seq.training.run import train

    run_dir = tmp_path_factory.mktemp("tiny_run")
    cfg = compose(
        [
            *TINY_NUMBERS,
            f"data.data_dir={tfds_dir}",
            "trainer.bleu_every_n_epochs=4",
            "trainer.bleu_every_n_steps=50",
        ]
    )
    metrics = train(cfg, run_dir)
    return run_dir, metrics, cfg
