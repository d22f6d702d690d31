"""Weights checkpoints of a run: last, best, the last K epochs, and their average."""

import math

import keras
import numpy as np

from seq2seq.model.weights import load_weights, remove_stale_temp_files, save_weights
from seq2seq.run_folder import RunFolder
from seq2seq.training.ema import averaged_weights


class CheckpointKeeper(keras.callbacks.Callback):
    """After every epoch with a finite loss: `last.weights.h5`, `epoch_NNN.weights.h5` (the
    last `keep` of them) and `best.weights.h5`, in `run_folder`'s checkpoints.

    Best is by dev BLEU (`on_dev_bleu`, from `DevEvaluation` after an epoch or batch) once
    there is one, before that by `val_loss`. An epoch whose loss is not finite, or during which
    `stop` (the `StopConditions`) saw training fail, writes nothing: the last good weights stay.
    With a `weight_average` (`ema.WeightAverage`), the files hold the averaged weights.
    """

    def __init__(self, run_folder, keep, stop=None, weight_average=None):
        super().__init__()
        self.folder = RunFolder(run_folder)
        self.stop = stop
        self.weight_average = weight_average
        remove_stale_temp_files(self.folder.checkpoints)
        self.keep = keep
        self.best = -math.inf  # minus the best validation loss
        self.best_bleu = -math.inf  # the best dev BLEU (from `on_dev_bleu`)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if not math.isfinite(float(logs.get("loss", 0.0))) or (self.stop and not self.stop.healthy):
            return
        self._save(self.folder.last_weights)
        if self.keep:
            self._save(self.folder.epoch_weights(epoch + 1))
            self.folder.epoch_weights(epoch + 1 - self.keep).unlink(missing_ok=True)
        loss = logs.get("val_loss", math.inf)
        if self.best_bleu == -math.inf and -loss > self.best:  # no dev BLEU yet
            self.best = -loss
            self._save(self.folder.best_weights)

    def on_dev_bleu(self, bleu):
        if self.stop and not self.stop.healthy:
            return
        if bleu > self.best_bleu:
            self.best_bleu = bleu
            self._save(self.folder.best_weights)

    def _save(self, path):
        with averaged_weights(self.weight_average):
            save_weights(self.model, path)

    def get_state(self):
        return {"best": self.best, "best_bleu": self.best_bleu}

    def set_state(self, state):
        self.best, self.best_bleu = state["best"], state.get("best_bleu", -math.inf)


def average_checkpoints(model, paths):
    """Sets the model's weights to the element-wise mean of the checkpoints in `paths`."""
    if not paths:
        raise ValueError("no checkpoints to average")
    total = None
    for path in paths:
        load_weights(model, path)
        weights = [np.asarray(w, np.float64) for w in model.get_weights()]
        total = weights if total is None else [t + w for t, w in zip(total, weights)]
    model.set_weights([t / len(paths) for t in total])
    return model
