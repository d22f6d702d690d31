"""Keras callbacks: wall-clock budget, perplexity and throughput logs, dev BLEU."""

import logging
import math
import time

import keras
import tensorflow as tf

log = logging.getLogger(__name__)


def optimizer_step(model):
    """Training steps done, also across resumes and for a distributed (mirrored) counter."""
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


class WallClockBudget(keras.callbacks.Callback):
    """Stops training cleanly once `max_minutes` have passed (checked after every batch)."""

    def __init__(self, max_minutes, used_seconds=0.0):
        super().__init__()
        self.max_seconds = max_minutes * 60 if max_minutes else None
        self.used_seconds = used_seconds  # by the run before a resume
        self.stopped = False

    def on_train_begin(self, logs=None):
        if not hasattr(self, "start"):  # once, also when training spans two fit calls
            self.start = time.monotonic() - self.used_seconds

    def on_train_batch_end(self, batch, logs=None):
        if self.max_seconds and time.monotonic() - self.start > self.max_seconds:
            self.model.stop_training = True
            self.stopped = True


class TrainingStatistics(keras.callbacks.Callback):
    """Adds perplexity (exp of the unsmoothed NLL), learning rate and tokens/s to the logs."""

    def __init__(self, source_tokens_per_epoch, target_tokens_per_epoch, history=(),
                 partial=None):  # fmt: skip
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
        self.first_step = optimizer_step(self.model) - batches

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
        # Counted by optimizer steps: Keras skips on_train_batch_end for the last batch of a
        # dataset of unknown length.
        self.batches = optimizer_step(self.model) - self.first_step
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


class DevEvaluation(keras.callbacks.Callback):
    """Dev BLEU and chrF every `every_n_epochs` epochs and/or every `every_n_steps` batches,
    with sample translations and attention heatmaps.

    Each score goes to the `listeners` (objects with `on_dev_bleu(bleu)`: plateau decay,
    early stopping, the best checkpoint); an epoch evaluation also sets `dev_bleu` in the
    epoch's logs.

    Args:
        evaluate_fn: () -> {"bleu": ..., "chrf": ...} on the dev sentences.
        samples_fn: (writer, step) -> None, writes the sample table and heatmaps at `step`.
        log_dir: TensorBoard folder for `dev/bleu`, `dev/chrf` (by epoch) and
            `dev_by_step/bleu`, `dev_by_step/chrf` (by batch).
        every_n_epochs, every_n_steps: 0 turns that schedule off; with both off, it evaluates
            only when `evaluate_now` is called (after training).
    """

    def __init__(self, evaluate_fn, samples_fn, log_dir, every_n_epochs, every_n_steps=0):
        super().__init__()
        self.evaluate_fn = evaluate_fn
        self.samples_fn = samples_fn
        self.writer = tf.summary.create_file_writer(log_dir)
        self.every_n_epochs = every_n_epochs
        self.every_n_steps = every_n_steps
        self.listeners = []
        self.scores = []
        self.last_step_evaluated = None

    def on_train_batch_end(self, batch, logs=None):
        if math.isfinite(float((logs or {}).get("loss", 0.0))):
            self._evaluate_if_step_due()

    def _evaluate_if_step_due(self):
        # Also called at epoch ends: Keras skips on_train_batch_end for the last batch of a
        # dataset of unknown length (the call that trains it also meets the end of the data).
        step = optimizer_step(self.model)
        n = self.every_n_steps
        if n and step % n == 0 and step != self.last_step_evaluated:
            self.last_step_evaluated = step
            scores = self.evaluate_now(step, tag="dev_by_step")
            log.info("step %d: dev BLEU %.2f, chrF %.2f", step, scores["bleu"], scores["chrf"])
            self._notify(scores["bleu"])

    def on_epoch_end(self, epoch, logs=None):
        if math.isfinite(float((logs or {}).get("loss", 0.0))):
            self._evaluate_if_step_due()
        if self.every_n_epochs and (epoch + 1) % self.every_n_epochs == 0:
            scores = self.evaluate_now(epoch + 1)
            if logs is not None:
                logs["dev_bleu"] = scores["bleu"]
            self._notify(scores["bleu"])

    def _notify(self, bleu):
        for listener in self.listeners:
            listener.on_dev_bleu(bleu)

    def evaluate_now(self, step, tag="dev"):
        scores = self.evaluate_fn()
        self.scores.append({"step" if tag == "dev_by_step" else "epoch": step, **scores})
        with self.writer.as_default():
            for name in ("bleu", "chrf"):
                tf.summary.scalar(f"{tag}/{name}", scores[name], step=step)
        self.samples_fn(self.writer, step)
        self.writer.flush()
        return scores


class DevBleuPatience(keras.callbacks.Callback):
    """Counts dev evaluations (fed by `DevEvaluation`) without a better BLEU and calls
    `on_patience_exhausted` when `patience` of them come in a row; the counters survive a
    resume."""

    def __init__(self, patience):
        super().__init__()
        self.patience = patience
        self.best = -math.inf
        self.wait = 0

    def on_dev_bleu(self, bleu):
        if bleu > self.best:
            self.best, self.wait = bleu, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.on_patience_exhausted()

    def on_patience_exhausted(self):
        raise NotImplementedError

    def get_state(self):
        return {"best": self.best, "wait": self.wait}

    def set_state(self, state):
        self.best, self.wait = state["best"], state["wait"]


class DevBleuEarlyStopping(DevBleuPatience):
    """Stops training after `patience` dev evaluations in a row without a better BLEU."""

    def on_patience_exhausted(self):
        log.info("early stopping: no better dev BLEU than %.2f in %d evaluations",
                 self.best, self.wait)  # fmt: skip
        self.model.stop_training = True


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Stops training at the first NaN or Inf loss and remembers where it happened.

    The checkpoint callback skips non-finite epochs, so the last good weights stay on disk.
    """

    def __init__(self):
        super().__init__()
        self.failure = None

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            step = optimizer_step(self.model)
            self.failure = {"step": step, "loss": float(loss)}
            self.model.stop_training = True

    def message(self, checkpoint):
        return (
            f"training stopped: the loss became {self.failure['loss']} at step "
            f"{self.failure['step']}; the last good weights are in {checkpoint} "
            "(try a lower trainer.learning_rate or set trainer.clipnorm)"
        )
