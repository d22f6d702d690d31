"""Keras callbacks: wall-clock budget, perplexity and throughput logs, dev BLEU."""

import math
import time

import keras
import tensorflow as tf


class WallClockBudget(keras.callbacks.Callback):
    """Stops training cleanly once `max_minutes` have passed (checked after every batch)."""

    def __init__(self, max_minutes):
        super().__init__()
        self.max_seconds = max_minutes * 60 if max_minutes else None
        self.stopped = False

    def on_train_begin(self, logs=None):
        self.start = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        if self.max_seconds and time.monotonic() - self.start > self.max_seconds:
            self.model.stop_training = True
            self.stopped = True


class TrainingStatistics(keras.callbacks.Callback):
    """Adds perplexity (exp of the unsmoothed NLL) and tokens/s to the logs.

    Must come before the TensorBoard callback so that TensorBoard writes what it adds.
    """

    def __init__(self, source_tokens_per_epoch, target_tokens_per_epoch):
        super().__init__()
        self.tokens = {"source": source_tokens_per_epoch, "target": target_tokens_per_epoch}
        self.history = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        _add_perplexity(logs, "")

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.monotonic() - self.epoch_start
        _add_perplexity(logs, "")
        _add_perplexity(logs, "val_")
        if logs is not None:
            logs["epoch_seconds"] = seconds
            for side, count in self.tokens.items():
                logs[f"{side}_tokens_per_second"] = count / seconds
            self.history.append(dict(logs))


def _add_perplexity(logs, prefix):
    if logs and f"{prefix}nll" in logs:
        logs[f"{prefix}perplexity"] = math.exp(min(float(logs[f"{prefix}nll"]), 50.0))


class DevBleu(keras.callbacks.Callback):
    """Decodes the dev sentences every `every_n_epochs` and logs BLEU and chrF.

    Args:
        evaluate_fn: callable () -> {"bleu": ..., "chrf": ...}.
        log_dir: TensorBoard folder for the scalars (`dev/bleu`, `dev/chrf`).
        every_n_epochs: 0 turns it off during training.
    """

    def __init__(self, evaluate_fn, log_dir, every_n_epochs):
        super().__init__()
        self.evaluate_fn = evaluate_fn
        self.log_dir = log_dir
        self.every_n_epochs = every_n_epochs
        self.scores = []

    def on_epoch_end(self, epoch, logs=None):
        if not self.every_n_epochs or (epoch + 1) % self.every_n_epochs:
            return
        scores = self.evaluate_fn()
        self.scores.append({"epoch": epoch + 1, **scores})
        with tf.summary.create_file_writer(self.log_dir).as_default():
            for name in ("bleu", "chrf"):
                tf.summary.scalar(f"dev/{name}", scores[name], step=epoch + 1)
        if logs is not None:
            logs["dev_bleu"] = scores["bleu"]
