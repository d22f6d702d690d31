"""Every setting is checked before any work starts, with one line naming the key and the range."""

import re
import subprocess
import sys

import pytest

from seq2seq.training.validation import validate
from tests.conftest import REPO, compose

# (override, what the one-line message must contain)
BAD = [
    ("trainer.epochs=-1", "trainer.epochs=-1: must be at least 0"),
    ("data.batch_tokens=0", "data.batch_tokens=0: must be at least 1"),
    ("data.batch_sentences=-2", "data.batch_sentences=-2: must be at least 1"),
    ("trainer.max_minutes=-1", "trainer.max_minutes=-1.0: must be above 0.0"),
    ("trainer.max_minutes=0", "trainer.max_minutes=0.0: must be above 0.0"),
    ("trainer.label_smoothing=1.5", "trainer.label_smoothing=1.5: must be at least 0.0 and below"),
    ("trainer.label_smoothing=-0.1", "trainer.label_smoothing=-0.1"),
    ("data.tokenizer.vocab_size=0", "data.tokenizer.vocab_size=0: must be at least 8"),
    ("data.tokenizer.vocab_size=1", "data.tokenizer.vocab_size=1"),
    ("data.tokenizer.max_sentences=0", "data.tokenizer.max_sentences=0"),
    ("data.tokenizer.model_type=word", "data.tokenizer.model_type='word' is unknown"),
    ("model.encoder_layers=0", "model.encoder_layers=0: must be at least 1"),
    ("model.decoder_layers=0", "model.decoder_layers=0"),
    ("model.units=0", "model.units=0"),
    ("model.embedding_dim=-3", "model.embedding_dim=-3"),
    ("model.dropout=1.0", "model.dropout=1.0: must be at least 0.0 and below 1.0"),
    ("model.param_init=-0.1", "model.param_init=-0.1"),
    ("model.attention=xyz", "model.attention='xyz' is unknown; choose one of"),
    ("model.bridge=xyz", "model.bridge='xyz' is unknown; choose one of"),
    ("model.units=33", "model.units=33 must be even with a bidirectional encoder"),
    ("model.tie_embeddings=true", "model.tie_embeddings=true needs model.embedding_dim"),
    ("decode.beam_size=0", "decode.beam_size=0: must be at least 1"),
    ("decode.alpha=-1", "decode.alpha=-1.0: must be at least 0"),
    ("decode.n_best=3", "decode.n_best=3: must be at most decode.beam_size=1"),
    ("decode.batch_size=0", "decode.batch_size=0: must be at least 1"),
    ("decode.parallel_batches=0", "decode.parallel_batches=0"),
    ("decode.max_length_ratio=0", "decode.max_length_ratio=0.0: must be above 0.0"),
    ("decode.max_length_offset=0", "decode.max_length_offset=0"),
    ("decode.max_input_length=0", "decode.max_input_length=0"),
    ("decode.intra_op_threads=0", "decode.intra_op_threads=0"),
    ("decode.stopping=soon", "decode.stopping='soon' is unknown"),
    ("decode.min_length=-1", "decode.min_length=-1: must be at least 0"),
    ("decode.no_repeat_ngram_size=-2", "decode.no_repeat_ngram_size=-2: must be at least 0"),
    ("trainer.learning_rate=-0.001", "trainer.learning_rate=-0.001"),
    ("trainer.learning_rate=nan", "trainer.learning_rate=nan: must be a finite number"),
    ("trainer.clipnorm=0", "trainer.clipnorm=0.0: must be above 0.0"),
    ("trainer.weight_decay=-1", "trainer.weight_decay=-1.0"),
    ("trainer.warmup_steps=-5", "trainer.warmup_steps=-5"),
    ("trainer.decay_every_steps=0", "trainer.decay_every_steps=0"),
    ("trainer.plateau_factor=1.5", "trainer.plateau_factor=1.5: must be above 0.0 and at most"),
    ("trainer.plateau_patience=0", "trainer.plateau_patience=0"),
    ("trainer.keep_checkpoints=-1", "trainer.keep_checkpoints=-1"),
    ("trainer.checkpoint_every_n_steps=-1", "trainer.checkpoint_every_n_steps=-1"),
    ("trainer.validation_max_sentences=0", "trainer.validation_max_sentences=0"),
    ("trainer.optimizer=lion", "trainer.optimizer='lion' is unknown"),
    ("trainer.schedule=exponential", "trainer.schedule='exponential' is unknown"),
    ("trainer.precision=float16", "trainer.precision='float16' is unknown"),
    ("trainer.strategy=horovod", "trainer.strategy='horovod' is unknown"),
    ("trainer.final_weights=worst", "trainer.final_weights='worst' is unknown"),
    ("trainer.accumulate_steps=0", "trainer.accumulate_steps=0: must be at least 1"),
    ("trainer.ema_decay=1", "trainer.ema_decay=1.0: must be at least 0.0 and below 1.0"),
    ("data.tokenizer.sample_alpha=-0.1", "data.tokenizer.sample_alpha=-0.1: must be at least"),
    ("data.tokenizer.nbest_size=1", "data.tokenizer.nbest_size=1: must be at least 2"),
    ("data.max_length_ratio=0.5", "data.max_length_ratio=0.5: must be at least 1.0"),
    ("model.source_word_dropout=1", "model.source_word_dropout=1.0: must be at least 0.0 and"),
    ("trainer.profile_steps=[5,2]", "trainer.profile_steps=[5, 2]: must be [first, last]"),
    ("data.pad_to_multiple=0", "data.pad_to_multiple=0"),
    ("data.pool_size=0", "data.pool_size=0"),
    ("data.shuffle_buffer=0", "data.shuffle_buffer=0"),
    ("data.max_source_length=0", "data.max_source_length=0"),
    ("data.max_target_length=-1", "data.max_target_length=-1"),
    ("data.train_size=0", "data.train_size=0"),
    ("data.min_number=-5", "data.min_number=-5"),
    ("data.source=foo", "data.source='foo' is unknown"),
]
RELATED = [
    (
        ["trainer.keep_checkpoints=2", "trainer.average_last_checkpoints=3"],
        "trainer.average_last_checkpoints=3 needs trainer.keep_checkpoints >= 3 (it is 2)",
    ),
    (
        ["decode.beam_size=2", "decode.n_best=3"],
        "decode.n_best=3: must be at most decode.beam_size=2",
    ),
    (
        ["data.tokenizer.sample_alpha=0.1", "data.tokenizer.model_type=bpe"],
        "data.tokenizer.sample_alpha=0.1 needs data.tokenizer.model_type=unigram (it is 'bpe')",
    ),
    (
        ["model.share_embeddings=true"],  # numbers: one model a side
        "model.share_embeddings=true needs one vocabulary for both sides: "
        "data.tokenizer.joint=true and data.tokenizer.restrict_vocabulary=false "
        "(they are false and true)",
    ),
    (
        ["trainer.accumulate_steps=2", "trainer.strategy=mirrored"],
        "trainer.accumulate_steps=2 needs trainer.strategy=default (it is 'mirrored')",
    ),
    (
        ["trainer.accumulate_steps=2", "trainer.precision=mixed_float16"],
        "trainer.accumulate_steps=2 cannot go with trainer.precision=mixed_float16",
    ),
]


@pytest.mark.parametrize("override, message", BAD, ids=[o for o, _ in BAD])
def test_a_bad_setting_is_refused_naming_the_key_and_the_range(override, message):
    with pytest.raises(ValueError) as caught:
        validate(compose([override]))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("overrides, message", RELATED)
def test_settings_that_cannot_go_together_are_refused(overrides, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        validate(compose(overrides))


def test_every_recipe_and_group_option_is_valid():
    from pathlib import Path

    for recipe in sorted((REPO / "conf" / "experiment").glob("*.yaml")):
        validate(compose([f"experiment={Path(recipe).stem}"]))
    validate(compose(["model=tiny"]))


def test_the_command_line_refuses_before_any_work(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "seq2seq.train", "model.units=0", f"hydra.run.dir={run}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "seq2seq.train: error: model.units=0: must be at least 1"
    )
    assert not (run / "config.yaml").exists() and not (run / "tokenizers").exists()


def test_a_run_folder_that_is_a_file_is_one_line_before_hydra(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = subprocess.run(
        [sys.executable, "-m", "seq2seq.train", f"hydra.run.dir={blocker}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1
    assert (
        proc.stderr.strip()
        == f"seq2seq.train: error: hydra.run.dir={blocker} is a file, not a folder"
    )
