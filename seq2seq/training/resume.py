"""Resuming a run exactly where it stopped: mid-epoch, after Ctrl-C or a kill.

A run folder's `checkpoints/resume/` holds a tf.train.Checkpoint of the model (weights and the
dropout seed-generator states), the optimizer (slots, iteration count), the weight average and
the gradients of a partial accumulation, if any, plus `state.json`:
complete epochs, batches done of the next one, the metric totals of that partial epoch,
per-epoch logs, callback states (best scores, plateau and early-stopping counters) and training
seconds used. It is written after every epoch, every `checkpoint_every_n_steps` batches and at
Ctrl-C. Re-running the same command on the same folder restores it; the training data of every
epoch depend only on the seed and the epoch number (`pipeline.epoch_batches`), and the resumed
epoch skips the batches already trained, so the run continues as if never stopped.
`state.json` is written (atomically) only after the checkpoint it names is complete.
"""

import dataclasses
import json
import logging
import math
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from seq2seq.files import atomic_write_json, ensure_free_space
from seq2seq.training.progress import optimizer_step

log = logging.getLogger(__name__)

STATE_FILE = "state.json"


class ResumeState:
    """Saves the resumable state of a run in `directory` and restores it from `restore_from`
    (default: the same folder).

    A multi-worker cluster's non-chief workers save to their own temporary folders and restore
    from the chief's (`restore_from`, on a shared filesystem); `agree(step)` (every worker
    calls it with the step it restored, -1 for none) fails unless all restored the same one.
    """

    def __init__(self, directory, model, restore_from=None, agree=None):
        self.directory = Path(directory)
        self.restore_from = Path(restore_from or directory)
        self.agree = agree
        model.optimizer.build(model.trainable_variables)  # slots must exist to be restored
        # Keras's SeedGenerators are not trackable objects: their states (the dropout masks to
        # come) are the model's variables that are not weights, saved explicitly.
        weights = {id(w) for w in model.weights}
        seeds = [v for v in model.variables if id(v) not in weights]
        training_state = {  # the weight average and a partial accumulation (model_setup)
            name: getattr(model, name)
            for name in ("weight_average", "accumulator")
            if getattr(model, name, None) is not None
        }
        self.checkpoint = tf.train.Checkpoint(
            model=model, optimizer=model.optimizer, seeds=seeds, **training_state
        )
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(self.directory), 2)

    def restore(self):
        """The saved state dict after restoring its checkpoint, or None for a fresh run."""
        path = self.restore_from / STATE_FILE
        state = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
        if state:
            self.checkpoint.restore(state["checkpoint"]).assert_existing_objects_matched()
        if self.agree:
            self.agree(optimizer_step(self.checkpoint.model) if state else -1)
        if not state:
            return None
        log.info(
            "resuming %s at epoch %d, batch %d",
            self.directory.parent.parent,
            state["epoch"] + 1,
            state.get("epoch_step", 0),
        )
        return state

    def save(self, state):
        """Writes the checkpoint, then `state` (a dict) naming it.

        Raises:
            OSError: too little free space for it (the folder named); the previous state stays.
        """
        variables = self.checkpoint.model.weights + self.checkpoint.optimizer.variables
        size = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables)
        ensure_free_space(self.directory.parent, size + 2**20, "saving the resumable state")
        step = int(keras.ops.convert_to_numpy(self.checkpoint.optimizer.iterations))
        state = {**state, "checkpoint": self.manager.save(checkpoint_number=step)}
        atomic_write_json(self.directory / STATE_FILE, state)


def _finite(value):
    return value is not None and math.isfinite(float(value))


class EpochStart(keras.callbacks.Callback):
    """Points the training data at each epoch as it starts; the first epoch after a mid-epoch
    resume skips the batches already trained and gets back their metric totals.

    Args:
        position: the `pipeline.DataPosition` of the training dataset.
        restored: the restored resume state, or None.
    """

    def __init__(self, position, restored=None):
        super().__init__()
        self.position = position
        restored = restored or {}
        self.resumed_epoch = restored.get("epoch")
        self.skip = restored.get("epoch_step", 0)
        self.metric_values = restored.get("metrics")
        self.offset = 0  # batches of the current epoch done before this run

    def on_epoch_begin(self, epoch, logs=None):
        resumed = epoch == self.resumed_epoch and self.skip > 0
        self.offset = self.skip if resumed else 0
        self.position.set(epoch, self.offset)
        if resumed and self.metric_values:
            variables = {v.path: v for v in self.model.metrics_variables}
            for path, value in self.metric_values.items():
                variables[path].assign(value)
        self.resumed_epoch = None


class ResumeCheckpoint(keras.callbacks.Callback):
    """Saves the resumable state after every epoch with a finite loss, every `every_n_steps`
    batches (0: never mid-epoch) and when Ctrl-C stopped training mid-epoch.

    Args:
        state: a `ResumeState`.
        statistics: the `TrainingStatistics` callback (per-epoch logs, training time).
        stateful: {name: object} of objects with `get_state()` / `set_state(dict)`.
        epoch_start: the `EpochStart` callback (batches done before a resume).
        stop: the `StopConditions` callback: after Ctrl-C the partial epoch is saved; when the
            time budget stopped training it is not (the run is over).
        every_n_steps: mid-epoch checkpoint interval in batches.
    """

    def __init__(self, state, statistics, stateful, epoch_start, stop, every_n_steps):
        super().__init__()
        self.state = state
        self.statistics = statistics
        self.stateful = stateful
        self.epoch_start = epoch_start
        self.stop = stop
        self.every_n_steps = every_n_steps
        self.saved_update = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.epoch_step, self.saved_step = epoch, self.epoch_start.offset, None

    def on_train_batch_end(self, batch, logs=None):
        self.epoch_step = self.epoch_start.offset + batch + 1
        # Validation resets the metric variables before the epoch ends: keep them now.
        self.metrics = {
            v.path: float(keras.ops.convert_to_numpy(v)) for v in self.model.metrics_variables
        }
        self.finite = _finite((logs or {}).get("loss")) and self.stop.healthy
        step = optimizer_step(self.model)
        # With gradient accumulation, several batches end at one update: saved after the first.
        due = self.every_n_steps and step and step % self.every_n_steps == 0
        if due and step != self.saved_update or self.stop.interrupted:
            self.saved_update = step
            self._save_mid_epoch()

    def on_epoch_end(self, epoch, logs=None):
        if self.stop.interrupted:
            self._save_mid_epoch()
        elif _finite((logs or {}).get("loss")) and self.stop.healthy and not self.stop.out_of_time:
            self._save(epoch + 1, 0, None)

    def _save_mid_epoch(self):
        if self.finite and self.saved_step != self.epoch_step:
            self._save(self.epoch, self.epoch_step, self.metrics)
            self.saved_step = self.epoch_step

    def _save(self, epoch, epoch_step, metrics):
        self.state.save(
            {
                "epoch": epoch,
                "epoch_step": epoch_step,
                "epoch_seconds": self.statistics.epoch_seconds() if epoch_step else 0.0,
                "metrics": metrics,
                "history": self.statistics.history,
                "callbacks": {name: cb.get_state() for name, cb in self.stateful.items()},
                "training_seconds": self.statistics.training_seconds(),
            }
        )


# What may change when a run folder is run again: how long to train, what to log and keep, and
# how to decode and export (none of these touches the state the run continues from).
CHANGEABLE_ON_RESUME = (
    "export",
    "data.data_dir",
    "data.manual_dir",
    "decode.",
    "trainer.epochs",
    "trainer.max_minutes",
    "trainer.early_stopping_patience",
    "trainer.keep_checkpoints",
    "trainer.checkpoint_every_n_steps",
    "trainer.release_memory_every_n_steps",
    "trainer.average_last_checkpoints",
    "trainer.final_weights",
    "trainer.log_every_n_steps",
    "trainer.bleu_every_n_epochs",
    "trainer.bleu_every_n_steps",
    "trainer.validation_max_sentences",
    "trainer.tensorboard_samples",
    "trainer.profile_steps",
)


def changed_settings(saved, new):
    """The settings of `new` that differ from `saved` (both `seq2seq.config.Config`): those that
    may change when a run continues, as `{key: (old, new)}`.

    Raises:
        ValueError: others differ; the message lists them, old -> new.
    """
    old, now = _flat(dataclasses.asdict(saved)), _flat(dataclasses.asdict(new))
    differing = {
        k: (old.get(k), now.get(k))
        for k in sorted(old.keys() | now.keys())
        if old.get(k) != now.get(k)
    }
    refused = {k: v for k, v in differing.items() if not k.startswith(CHANGEABLE_ON_RESUME)}
    if refused:
        listed = ", ".join(f"{k} ({a!r} -> {b!r})" for k, (a, b) in refused.items())
        raise ValueError(
            f"the run folder was trained with other settings, which a continued run cannot "
            f"change: {listed}; use a new hydra.run.dir (or trainer.init_from to start from "
            "its weights)"
        )
    return differing


def _flat(tree, prefix=""):
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict) and key != "splits":
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
