"""How training progresses: steps, perplexity, learning rate, tokens/s, the log, TensorBoard."""

import logging
import math
import time

import keras
import tensorflow as tf


def optimizer_step(model):
    """Training steps done, also across resumes and for a distributed (mirrored) counter."""
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def trained_batches(model):
    """Batches trained, also across resumes: the optimizer's steps, unless several batches
    make one step (gradient accumulation counts its batches)."""
    accumulator = getattr(model, "accumulator", None)
    if accumulator is None:
        return optimizer_step(model)
    return int(keras.ops.convert_to_numpy(accumulator.batches))


class TrainingStatistics(keras.callbacks.Callback):
    """Adds perplexity (exp of the unsmoothed NLL), learning rate and tokens/s to the logs."""

    def __init__(self, source_tokens_per_epoch, target_tokens_per_epoch, history=(), partial=None):
        super().__init__()
        self.tokens = {"source": source_tokens_per_epoch, "target": target_tokens_per_epoch}
        self.history = list(history)  # per-epoch logs, including those before a resume
        self.partial = partial  # (epoch, batches, seconds) done of an epoch before a resume

    def training_seconds(self):
        """Seconds of the complete epochs."""
        return sum(h["seconds"] for h in self.history)

    def epoch_seconds(self):
        """Seconds of the current epoch so far, including those before a resume."""
        return time.monotonic() - self.epoch_start

    def on_epoch_begin(self, epoch, logs=None):
        batches, seconds = 0, 0.0
        if self.partial and self.partial[0] == epoch:
            batches, seconds = self.partial[1:]
        self.partial = None
        self.epoch_start = time.monotonic() - seconds
        self.batches = batches
        self.first_step = trained_batches(self.model) - batches

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        _add_perplexity(logs, "")

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.monotonic() - self.epoch_start
        _add_perplexity(logs, "")
        _add_perplexity(logs, "val_")
        if logs is None:
            return
        logs.pop("val_gradient_norm", None)  # no gradients in evaluation
        logs["learning_rate"] = float(
            keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
        )
        logs["seconds"] = seconds
        # Counted by the model: Keras skips on_train_batch_end for the last batch of a dataset
        # of unknown length.
        self.batches = trained_batches(self.model) - self.first_step
        complete = self._complete_epoch_batches()
        fraction = self.batches / complete if complete else 1.0
        for side, count in self.tokens.items():
            logs[f"{side}_tokens_per_second"] = fraction * count / seconds
        self.history.append({k: float(v) for k, v in dict(logs, batches=self.batches).items()})

    def _complete_epoch_batches(self):
        """Batches of a whole epoch; an epoch cut short by the time budget has fewer."""
        if self.model.stop_training and self.history:
            return self.history[0]["batches"]
        return self.batches


class CompleteHistory(keras.callbacks.Callback):
    """Adds to the epoch's `TrainingStatistics.history` entry what the callbacks after it put
    in the logs (`dev_bleu`, ...): place it after them."""

    def __init__(self, stats):
        super().__init__()
        self.stats = stats

    def on_epoch_end(self, epoch, logs=None):
        if logs and self.stats.history:
            entry = self.stats.history[-1]
            entry.update({k: float(v) for k, v in logs.items() if k not in entry})


log = logging.getLogger(__name__)

EPOCH_LINE = (
    ("loss", "loss {:.4f}"),
    ("perplexity", "ppl {:.2f}"),
    ("token_accuracy", "acc {:.4f}"),
    ("val_loss", "val loss {:.4f}"),
    ("val_perplexity", "val ppl {:.2f}"),
    ("dev_bleu", "dev BLEU {:.2f}"),
    ("learning_rate", "lr {:.3g}"),
    ("target_tokens_per_second", "{:,.0f} target tok/s"),
    ("seconds", "{:.0f} s"),
)


class EpochLog(keras.callbacks.Callback):
    """One line an epoch in the log (and so in the run's `train.log`)."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        parts = [fmt.format(float(logs[key])) for key, fmt in EPOCH_LINE if key in logs]
        log.info("epoch %d/%d: %s", epoch + 1, self.epochs, ", ".join(parts))


class ScalarLogger(keras.callbacks.Callback):
    """Writes the logs to TensorBoard: `batch_*` every N steps, `epoch_*` every epoch.

    Keras's own TensorBoard callback loses epoch summaries on datasets of unknown length (as
    bucketed tf.data pipelines are), so scalars are written here. Training values go to
    `train/`, validation values (the `val_` logs) to `validation/`.
    """

    def __init__(self, log_dir, every_n_steps):
        super().__init__()
        self.train_writer = tf.summary.create_file_writer(f"{log_dir}/train")
        self.validation_writer = tf.summary.create_file_writer(f"{log_dir}/validation")
        self.every_n_steps = every_n_steps

    def on_train_batch_end(self, batch, logs=None):
        step = optimizer_step(self.model)
        if logs and self.every_n_steps and step % self.every_n_steps == 0:
            with self.train_writer.as_default():
                for name, value in logs.items():
                    tf.summary.scalar(f"batch_{name}", value, step=step)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        with self.train_writer.as_default():
            for name, value in logs.items():
                if not name.startswith("val_"):
                    tf.summary.scalar(f"epoch_{name}", value, step=epoch + 1)
        with self.validation_writer.as_default():
            for name, value in logs.items():
                if name.startswith("val_"):
                    tf.summary.scalar(f"epoch_{name[4:]}", value, step=epoch + 1)
        self.train_writer.flush()
        self.validation_writer.flush()


def _add_perplexity(logs, prefix):
    if logs and f"{prefix}nll" in logs:
        logs[f"{prefix}perplexity"] = math.exp(min(float(logs[f"{prefix}nll"]), 50.0))
