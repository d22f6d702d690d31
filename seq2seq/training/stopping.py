"""Why training stops before its last epoch: a non-finite loss, Ctrl-C, the time budget, or dev
BLEU that stopped improving (early stopping)."""

import logging
import math
import signal
import time

import keras
import tensorflow as tf

from seq2seq.training.progress import optimizer_step

log = logging.getLogger(__name__)


DIVERGENCE_FACTOR = 10  # times the loss of a uniform guess over the target vocabulary


class StopConditions(keras.callbacks.Callback):
    """Stops training after the current batch, and remembers why:

    - `failure`: training failed (`{"step", "loss", "why"}`): the loss became NaN or infinite, or
      diverged (above `loss_ceiling`, far more than a uniform guess costs, which a model only
      reaches when its weights blow up), or a weight became non-finite. The checkpoints and the
      resumable state skip such epochs, so the last good weights stay on disk.
    - `interrupted`: the first Ctrl-C (SIGINT); a second one interrupts at once.
    - `out_of_time`: `max_minutes` of training have passed, counting `used_seconds` of the run
      before a resume.
    """

    def __init__(self, max_minutes=None, used_seconds=0.0, loss_ceiling=math.inf):
        super().__init__()
        self.max_seconds = max_minutes * 60 if max_minutes else None
        self.used_seconds = used_seconds
        self.loss_ceiling = loss_ceiling
        self.failure = None
        self.interrupted = False
        self.out_of_time = False

    def on_train_begin(self, logs=None):
        if not hasattr(self, "start"):  # once, also when training spans two fit calls
            self.start = time.monotonic() - self.used_seconds
        self.previous_handler = signal.signal(signal.SIGINT, self._on_interrupt)

    def on_train_end(self, logs=None):
        signal.signal(signal.SIGINT, self.previous_handler)

    def _on_interrupt(self, signum, frame):
        if self.interrupted:
            raise KeyboardInterrupt
        self.interrupted = True
        self.model.stop_training = True

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self._fail(float(loss), f"the loss became {float(loss)}")
        elif loss is not None and float(loss) > self.loss_ceiling:
            self._fail(
                float(loss),
                f"the loss diverged to {float(loss):.4g}, above "
                f"{self.loss_ceiling:.1f} ({DIVERGENCE_FACTOR}x a uniform guess)",
            )
        if self.max_seconds and time.monotonic() - self.start > self.max_seconds:
            self.out_of_time = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.failure is None and not _all_finite(self.model.trainable_weights):
            self._fail(float((logs or {}).get("loss", math.nan)), "a weight became non-finite")

    def _fail(self, loss, why):
        if self.failure is None:
            self.failure = {"step": optimizer_step(self.model), "loss": loss, "why": why}
        self.model.stop_training = True

    @property
    def healthy(self):
        return self.failure is None

    def failure_message(self, checkpoint):
        return (
            f"training stopped: {self.failure['why']} at step {self.failure['step']}; the last "
            f"good weights are in {checkpoint} (try a lower trainer.learning_rate or set "
            "trainer.clipnorm)"
        )


def _all_finite(weights):
    return all(bool(tf.reduce_all(tf.math.is_finite(w))) for w in weights)


class DevBleuPatience:
    """Counts dev evaluations (`on_dev_bleu`, from `DevEvaluation`) without a better BLEU and
    calls `on_patience_exhausted` when `patience` of them come in a row; its counters survive a
    resume (`get_state` / `set_state`)."""

    def __init__(self, model, patience):
        self.model = model
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


class EarlyStopping(DevBleuPatience):
    """Stops training after `patience` dev evaluations in a row without a better BLEU."""

    def on_patience_exhausted(self):
        log.info(
            "early stopping: no better dev BLEU than %.2f in %d evaluations", self.best, self.wait
        )
        self.model.stop_training = True
