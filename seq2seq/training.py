"""The steps of a training run, each taking plain arguments (no Hydra below the entry point)."""

import logging
import random
import sys
import warnings
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from seq2seq import pipeline, tokenizers
from seq2seq.callbacks import (
    NonFiniteLossGuard,
    ScalarLogger,
    TrainingStatistics,
    WallClockBudget,
)
from seq2seq.checkpoints import CheckpointKeeper
from seq2seq.losses import MaskedCrossEntropy, NegativeLogLikelihood, TokenAccuracy
from seq2seq.model import Translator
from seq2seq.resume import ResumeCheckpoint, StopOnInterrupt, replay_epochs

log = logging.getLogger(__name__)

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


def configure_precision(precision):
    if precision not in PRECISIONS:
        raise ValueError(f"trainer.precision={precision!r}: choose one of {PRECISIONS}")
    keras.mixed_precision.set_global_policy(precision)


def prepare_tokenizers(
    train_split, out_dir, *, vocab_size, model_type, joint, restrict_vocabulary=False
):
    """Trains SentencePiece on the training split, or reuses the models already in out_dir."""
    paths = (Path(out_dir) / "source.model", Path(out_dir) / "target.model")
    if not all(p.exists() for p in paths):
        pairs = (
            (ex["source"].decode("utf-8"), ex["target"].decode("utf-8"))
            for ex in train_split.as_numpy_iterator()
        )
        paths = tokenizers.train_tokenizers(
            pairs, out_dir, vocab_size=vocab_size, model_type=model_type, joint=joint,
            restrict_vocabulary=restrict_vocabulary,
        )  # fmt: skip
    return tuple(tokenizers.load_tokenizer(p) for p in paths), paths


def make_datasets(
    splits,
    source_tokenizer,
    target_tokenizer,
    *,
    max_source_length,
    max_target_length,
    batch_tokens,
    batch_sentences,
    shuffle_buffer,
    seed,
    pool_size=32768,
    num_replicas=1,
):
    """Tokenized, cached, length-sorted training and validation batches, and training
    statistics."""
    lengths = dict(max_source_length=max_source_length, max_target_length=max_target_length)
    batching = dict(
        batch_tokens=batch_tokens,
        batch_sentences=batch_sentences,
        pool_size=pool_size,
        num_replicas=num_replicas,
    )
    tokenized = {
        name: pipeline.tokenize_pairs(
            splits[name], source_tokenizer, target_tokenizer, **lengths
        ).cache()
        for name in ("train", "validation")
    }
    stats = pipeline.pair_statistics(tokenized["train"])  # also fills the cache
    _log_statistics(stats)
    if stats["pairs"] == stats["empty"]:
        raise ValueError("the training set is empty after dropping empty source/target lines")
    train = pipeline.make_batches(
        tokenized["train"], training=True, seed=seed, shuffle_buffer=shuffle_buffer, **batching
    )
    validation = pipeline.make_batches(tokenized["validation"], training=False, **batching)
    return train, validation, stats


def _log_statistics(stats):
    log.info(
        "training pairs: %d read, %d dropped as empty, %d sources and %d targets truncated; "
        "%d source and %d target tokens a epoch",
        stats["pairs"],
        stats["empty"],
        stats["source_truncated"],
        stats["target_truncated"],
        stats["source_tokens"],
        stats["target_tokens"],
    )


def build_translator(
    source_vocabulary_size,
    target_vocabulary_size,
    *,
    optimizer,
    label_smoothing,
    clipnorm=None,
    **model_kwargs,
):
    """A compiled Translator: the optimizer, masked (label-smoothed) cross-entropy, token
    metrics, clipping to a global gradient norm of `clipnorm`; every weight built."""
    model = Translator(source_vocabulary_size, target_vocabulary_size, **model_kwargs)
    one = tf.ones((1, 2), tf.int32)
    model({"encoder_token_ids": one, "decoder_token_ids": one})
    model.compile(
        optimizer=optimizer,
        loss=MaskedCrossEntropy(label_smoothing),
        metrics=[NegativeLogLikelihood(), TokenAccuracy()],
        gradient_clip_norm=clipnorm,
    )
    return model


def count_batches(dataset):
    return int(dataset.reduce(0, lambda count, _: count + 1))


class TrainingInterrupted(Exception):
    """Ctrl-C stopped training; the message says how to resume."""


def fit(
    model,
    train,
    validation,
    *,
    run_dir,
    epochs,
    max_minutes,
    log_every_n_steps,
    train_stats,
    keep_checkpoints=0,
    callbacks=(),
    profile_steps=None,
    resume=None,
):
    """model.fit with the run's callbacks; returns per-epoch logs and whether time ran out.

    `callbacks` come after the statistics (so they see perplexity and learning rate in the
    logs) and before checkpointing and logging, in order: e.g. dev evaluation, early stopping.
    Those with `get_state`/`set_state` are saved for resuming. `resume` is a
    `seq2seq.resume.ResumeState`: its saved state, if any, is restored and training continues
    after the last complete epoch. `profile_steps` is a (first, last) batch range to trace.
    """
    run_dir = Path(run_dir)
    restored = resume.restore() if resume else None
    done = restored["epoch"] if restored else 0
    history = restored["history"] if restored else ()
    stats = TrainingStatistics(train_stats["source_tokens"], train_stats["target_tokens"], history)
    budget = WallClockBudget(max_minutes, stats.training_seconds())
    guard, interrupt = NonFiniteLossGuard(), StopOnInterrupt()
    keeper = CheckpointKeeper(run_dir / "checkpoints", keep_checkpoints)
    stateful = {f"{type(c).__name__}_{i}": c for i, c in enumerate([keeper, *callbacks])
                if hasattr(c, "get_state") and hasattr(c, "set_state")}  # fmt: skip
    for name, callback in stateful.items():
        if restored and name in restored["callbacks"]:
            callback.set_state(restored["callbacks"][name])
    everything = [guard, interrupt, budget, stats, *callbacks, keeper]
    if resume:
        cut_short = lambda: interrupt.interrupted or budget.stopped  # noqa: E731
        everything.append(ResumeCheckpoint(resume, stats, stateful, cut_short))
    everything += [ScalarLogger(str(run_dir / "tensorboard"), log_every_n_steps)]
    everything += _profiler(run_dir, profile_steps)
    replay_epochs(train, done)
    _quiet_unknown_length_warnings()
    verbose = 1 if sys.stdout.isatty() else 2  # progress bar on a terminal, a line an epoch in logs
    model.fit(train, validation_data=validation, epochs=epochs, initial_epoch=done,
              callbacks=everything, verbose=verbose)  # fmt: skip
    if guard.failure:
        raise FloatingPointError(guard.message(run_dir / "checkpoints" / "last.weights.h5"))
    if interrupt.interrupted:
        raise TrainingInterrupted(
            f"interrupted: {len(stats.history)} epochs are saved in {run_dir / 'checkpoints'}; "
            "run the same command with the same hydra.run.dir to resume after the last "
            "complete epoch"
        )
    return stats.history, budget.stopped


def _profiler(run_dir, profile_steps):
    if not profile_steps:
        return []
    return [keras.callbacks.TensorBoard(str(run_dir / "tensorboard"), update_freq="epoch",
                                        profile_batch=tuple(profile_steps))]  # fmt: skip


def _quiet_unknown_length_warnings():
    # Datasets of unknown length make Keras warn at every epoch end although every epoch runs.
    warnings.filterwarnings("ignore", message="Your input ran out of data")
    warnings.filterwarnings("ignore", message="`shuffle=True` was passed")


def set_seed(seed):
    """Seeds Python, NumPy and TensorFlow."""
    keras.utils.set_random_seed(seed)


def reseed_host(seed):
    """Seeds Python and NumPy again (Keras draws its default initializer seeds from Python's
    generator). TensorFlow's seed stays: resetting it would drop the SentencePiece resources."""
    random.seed(seed)
    np.random.seed(seed)
