"""Why training stops before its last epoch: a non-finite loss, Ctrl-C, the time budget, or dev
BLEU that stopped improving (early stopping)."""

import logging
import math
import signal
import time

import keras

from seq2seq.training.progress import optimizer_step

log = logging.getLogger(__name__)


class StopConditions(keras.callbacks.Callback):
    """Stops training after the current batch, and remembers why:

    - `failure`: the loss became NaN or infinite (`{"step", "loss"}`); the checkpoints skip such
      epochs, so the last good weights stay on disk.
    - `interrupted`: the first Ctrl-C (SIGINT); a second one interrupts at once.
    - `out_of_time`: `max_minutes` of training have passed, counting `used_seconds` of the run
      before a resume.
    """

    def __init__(self, max_minutes=None, used_seconds=0.0):
        super().__init__()
        self.max_seconds = max_minutes * 60 if max_minutes else None
        self.used_seconds = used_seconds
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
            self.failure = {"step": optimizer_step(self.model), "loss": float(loss)}
            self.model.stop_training = True
        if self.max_seconds and time.monotonic() - self.start > self.max_seconds:
            self.out_of_time = True
            self.model.stop_training = True

    def failure_message(self, checkpoint):
        return (
            f"training stopped: the loss became {self.failure['loss']} at step "
            f"{self.failure['step']}; the last good weights are in {checkpoint} "
            "(try a lower trainer.learning_rate or set trainer.clipnorm)"
        )


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
