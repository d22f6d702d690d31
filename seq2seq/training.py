"""The steps of a training run, each taking plain arguments (no Hydra below the entry point)."""

import functools
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
    CompleteHistory,
    DevEvaluation,
    NonFiniteLossGuard,
    ScalarLogger,
    TrainingStatistics,
    WallClockBudget,
    optimizer_step,
)
from seq2seq.checkpoints import CheckpointKeeper
from seq2seq.losses import MaskedCrossEntropy, NegativeLogLikelihood, TokenAccuracy
from seq2seq.model import Translator
from seq2seq.resume import EpochStart, ResumeCheckpoint, StopOnInterrupt

log = logging.getLogger(__name__)

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


def configure_precision(precision):
    if precision not in PRECISIONS:
        raise ValueError(f"trainer.precision={precision!r}: choose one of {PRECISIONS}")
    keras.mixed_precision.set_global_policy(precision)


def prepare_tokenizers(train_split, out_dir, **options):
    """Trains SentencePiece on the training split, or reuses the models already in out_dir.
    `options`: those of `tokenizers.train_tokenizers` (data.tokenizer.*)."""
    paths = (Path(out_dir) / "source.model", Path(out_dir) / "target.model")
    if not all(p.exists() for p in paths):
        paths = tokenizers.train_tokenizers(_string_pairs(train_split), out_dir, **options)
    return tuple(tokenizers.load_tokenizer(p) for p in paths), paths


def _string_pairs(split, chunk=4096):
    """(source, target) Python strings of a split, read a chunk at a time (4x faster than one
    pair at a time on 1M pairs)."""
    for batch in split.batch(chunk).as_numpy_iterator():
        for source, target in zip(batch["source"], batch["target"]):
            yield source.decode("utf-8"), target.decode("utf-8")


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
    pad_to_multiple=1,
):
    """Length-sorted training and validation batches, training statistics, and the
    `pipeline.DataPosition` that `fit` moves through the epochs."""
    lengths = dict(max_source_length=max_source_length, max_target_length=max_target_length)
    batching = dict(
        batch_tokens=batch_tokens,
        batch_sentences=batch_sentences,
        pool_size=pool_size,
        num_replicas=num_replicas,
        pad_to_multiple=pad_to_multiple,
    )
    tokenized = {
        name: pipeline.tokenize_pairs(splits[name], source_tokenizer, target_tokenizer, **lengths)
        for name in ("train", "validation")
    }
    stats = pipeline.pair_statistics(tokenized["train"])
    _log_statistics(stats)
    if stats["pairs"] == stats["empty"]:
        raise ValueError("the training set is empty after dropping empty source/target lines")
    # The dev set is small: cached. Built first, eagerly, so that a bad batching setting fails
    # with its own message rather than wrapped in the training pipeline's traced function.
    validation = pipeline.make_batches(tokenized["validation"].cache(), training=False, **batching)
    position = pipeline.DataPosition()
    # The training pairs are streamed and tokenized again every epoch (about 1% of an epoch's
    # time): memory stays flat however large the corpus.
    train = pipeline.epoch_batches(tokenized["train"], position, seed=seed,
                                   shuffle_buffer=shuffle_buffer, **batching)  # fmt: skip
    return train, validation, stats, position


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
    param_init=0.0,
    **model_kwargs,
):
    """A compiled Translator: the optimizer, masked (label-smoothed) cross-entropy, token
    metrics, clipping to a global gradient norm of `clipnorm`; every weight built, and drawn
    from U(-param_init, param_init) when `param_init` > 0."""
    model = Translator(source_vocabulary_size, target_vocabulary_size, **model_kwargs)
    one = tf.ones((1, 2), tf.int32)
    model({"encoder_token_ids": one, "decoder_token_ids": one})
    if param_init:
        initialize_uniformly(model, param_init)
    model.compile(
        optimizer=optimizer,
        loss=MaskedCrossEntropy(label_smoothing),
        metrics=[NegativeLogLikelihood(), TokenAccuracy()],
        gradient_clip_norm=clipnorm,
    )
    # Keras builds compiled metrics at the first step; a resumed run restores their totals
    # before it, so they are built now.
    model.compute_metrics(None, tf.ones((1, 2), tf.int32), model(
        {"encoder_token_ids": one, "decoder_token_ids": one}))  # fmt: skip
    model.reset_metrics()
    return model


def initialize_uniformly(model, scale):
    """Draws every trainable weight from U(-scale, scale), biases included (NumPy's seeded
    generator), as OpenNMT's `param_init` and tensorflow/nmt's `init_weight` do.

    With Keras's own initializers (glorot, orthogonal; 0.03 for the output layer) the peer
    configuration learned about three times slower: 15% training token accuracy after 300
    steps, against 34% with U(-0.1, 0.1) and 29% for OpenNMT-py after 150.
    """
    for weight in model.trainable_weights:
        weight.assign(np.random.uniform(-scale, scale, weight.shape).astype(weight.dtype))


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
    position,
    keep_checkpoints=0,
    checkpoint_every_n_steps=0,
    callbacks=(),
    profile_steps=None,
    resume=None,
):
    """model.fit with the run's callbacks; returns per-epoch logs and whether time ran out.

    `callbacks` come after the statistics (so they see perplexity and learning rate in the
    logs) and before checkpointing and logging, in order: e.g. dev evaluation, early stopping.
    Those with `get_state`/`set_state` are saved for resuming. `position` is the training
    dataset's `pipeline.DataPosition`. `resume` is a `seq2seq.resume.ResumeState`: its saved
    state, if any, is restored and training continues where it stopped (mid-epoch too), with
    a checkpoint every `checkpoint_every_n_steps` batches. `profile_steps` is a (first, last)
    batch range to trace.
    """
    run_dir = Path(run_dir)
    restored = resume.restore() if resume else None
    done = restored["epoch"] if restored else 0
    stats = _statistics(train_stats, restored)
    budget = WallClockBudget(max_minutes, stats.training_seconds() + _partial_seconds(restored))
    guard, interrupt = NonFiniteLossGuard(), StopOnInterrupt()
    keeper = CheckpointKeeper(run_dir / "checkpoints", keep_checkpoints)
    _connect_dev_listeners(callbacks, keeper)
    stateful = {f"{type(c).__name__}_{i}": c for i, c in enumerate([keeper, *callbacks])
                if hasattr(c, "get_state") and hasattr(c, "set_state")}  # fmt: skip
    for name, callback in stateful.items():
        if restored and name in restored["callbacks"]:
            callback.set_state(restored["callbacks"][name])
    epoch_start = EpochStart(position, restored)
    everything = [epoch_start, guard, interrupt, budget, stats, *callbacks, keeper,
                  CompleteHistory(stats)]
    if resume:
        everything.append(ResumeCheckpoint(
            resume, stats, stateful, epoch_start, checkpoint_every_n_steps,
            interrupted=lambda: interrupt.interrupted, out_of_time=lambda: budget.stopped,
        ))  # fmt: skip
    everything += [ScalarLogger(str(run_dir / "tensorboard"), log_every_n_steps)]
    everything += _profiler(run_dir, profile_steps)
    _quiet_unknown_length_warnings()
    verbose = 1 if sys.stdout.isatty() else 2  # progress bar on a terminal, a line an epoch in logs
    run = functools.partial(model.fit, train, validation_data=validation, callbacks=everything,
                            verbose=verbose)  # fmt: skip
    if restored and restored.get("epoch_step") and done < epochs:
        # Keras caps every epoch at the length of the first one it saw (tensorflow#41571): the
        # rest of a resumed epoch gets a fit call of its own.
        run(initial_epoch=done, epochs=done + 1)
        done += 1
    if done < epochs and not model.stop_training:
        run(initial_epoch=done, epochs=epochs)
    if guard.failure:
        raise FloatingPointError(guard.message(run_dir / "checkpoints" / "last.weights.h5"))
    if interrupt.interrupted:
        raise TrainingInterrupted(
            f"interrupted: the run is saved in {run_dir / 'checkpoints' / 'resume'} after "
            f"{optimizer_step(model)} steps; run the same command with the same "
            "hydra.run.dir to resume where it stopped"
        )
    return stats.history, budget.stopped


def _connect_dev_listeners(callbacks, keeper):
    """Dev evaluations feed plateau decay, early stopping and the best checkpoint."""
    listeners = [c for c in callbacks if hasattr(c, "on_dev_bleu")] + [keeper]
    for callback in callbacks:
        if isinstance(callback, DevEvaluation):
            callback.listeners = listeners


def _statistics(train_stats, restored):
    history = restored["history"] if restored else ()
    partial = None
    if restored and restored.get("epoch_step"):
        partial = (restored["epoch"], restored["epoch_step"], restored["epoch_seconds"])
    return TrainingStatistics(train_stats["source_tokens"], train_stats["target_tokens"],
                              history, partial)  # fmt: skip


def _partial_seconds(restored):
    return restored.get("epoch_seconds", 0.0) if restored else 0.0


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
