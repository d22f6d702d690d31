"""Dev BLEU during training: the evaluation, and who hears of its score."""

import logging
import math

import keras
import tensorflow as tf

from seq2seq.training.progress import optimizer_step

log = logging.getLogger(__name__)


class DevEvaluation(keras.callbacks.Callback):
    """Dev BLEU and chrF every `every_n_epochs` epochs and/or every `every_n_steps` batches,
    with sample translations and attention heatmaps.

    Each score goes to the `listeners`, in order (objects with `on_dev_bleu(bleu)`: plateau decay,
    early stopping, the best checkpoint); an epoch evaluation also sets `dev_bleu` in the
    epoch's logs.

    Args:
        evaluate_fn: () -> {"bleu": ..., "chrf": ...} on the dev sentences.
        samples_fn: (writer, step) -> None, writes the sample table and heatmaps at `step`.
        log_dir: TensorBoard folder for `dev/bleu`, `dev/chrf` (by epoch) and
            `dev_by_step/bleu`, `dev_by_step/chrf` (by batch).
        every_n_epochs, every_n_steps: 0 turns that schedule off; with both off, it evaluates
            only when `evaluate_now` is called (after training).
        listeners: what hears of each score.
    """

    def __init__(
        self, evaluate_fn, samples_fn, log_dir, every_n_epochs, every_n_steps=0, listeners=()
    ):
        super().__init__()
        self.evaluate_fn = evaluate_fn
        self.samples_fn = samples_fn
        self.writer = tf.summary.create_file_writer(log_dir)
        self.every_n_epochs = every_n_epochs
        self.every_n_steps = every_n_steps
        self.listeners = list(listeners)
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
        if n and step and step % n == 0 and step != self.last_step_evaluated:
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
