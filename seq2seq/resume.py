"""Resuming a run: model, optimizer, epoch, callback states and data order after every epoch.

A run folder's `checkpoints/resume/` holds a tf.train.Checkpoint of the model (weights and the
dropout seed-generator states) and the optimizer (slots, iteration count), plus `state.json`
(epoch, per-epoch logs, callback states, training seconds used). Re-running the same command on
the same folder continues after the last complete epoch.

The shuffled training dataset is re-iterated once per completed epoch before training (each
iteration draws the next epoch's shuffle), so the resumed epochs see the data in the order of
an uninterrupted run. Resumed runs are not yet bit-identical to uninterrupted ones: on the tiny
test model the losses after a resume agree to about 1%. A process killed mid-epoch loses at
most that epoch's work; `state.json` is written (atomically) only after the checkpoint it names
is complete.
"""

import json
import logging
import signal
from pathlib import Path

import keras
import tensorflow as tf

from seq2seq.files import atomic_write_json

log = logging.getLogger(__name__)

STATE_FILE = "state.json"


class ResumeState:
    """Saves and restores the resumable state of a run in `directory`."""

    def __init__(self, directory, model):
        self.directory = Path(directory)
        model.optimizer.build(model.trainable_variables)  # slots must exist to be restored
        self.checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(self.directory), 2)

    def restore(self):
        """The saved state dict after restoring its checkpoint, or None for a fresh run."""
        path = self.directory / STATE_FILE
        if not path.exists():
            return None
        state = json.loads(path.read_text(encoding="utf-8"))
        self.checkpoint.restore(state["checkpoint"]).assert_existing_objects_matched()
        log.info("resuming %s after epoch %d", self.directory.parent.parent, state["epoch"])
        return state

    def save(self, epoch, history, callback_states, training_seconds):
        checkpoint = self.manager.save(checkpoint_number=epoch)
        state = {
            "epoch": epoch,
            "checkpoint": checkpoint,
            "history": history,
            "callbacks": callback_states,
            "training_seconds": training_seconds,
        }
        atomic_write_json(self.directory / STATE_FILE, state)


def replay_epochs(dataset, epochs):
    """Draws the shuffle of `epochs` epochs without reading data, so the next iteration of
    `dataset` is shuffled like epoch `epochs + 1` of an uninterrupted run."""
    for _ in range(epochs):
        iter(dataset)


class ResumeCheckpoint(keras.callbacks.Callback):
    """After every epoch with a finite loss, saves the resumable state.

    Args:
        state: a `ResumeState`.
        statistics: the `TrainingStatistics` callback (per-epoch logs, training time).
        stateful: {name: callback} of callbacks with `get_state()` / `set_state(dict)`.
        cut_short: () -> bool, true when the epoch ended early (Ctrl-C, time budget): such an
            epoch is not saved as complete, so a resume redoes it.
    """

    def __init__(self, state, statistics, stateful, cut_short):
        super().__init__()
        self.state = state
        self.statistics = statistics
        self.stateful = stateful
        self.cut_short = cut_short

    def on_epoch_end(self, epoch, logs=None):
        loss = float((logs or {}).get("loss", 0.0))
        if loss != loss or abs(loss) == float("inf") or self.cut_short():
            return
        states = {name: cb.get_state() for name, cb in self.stateful.items()}
        self.state.save(epoch + 1, self.statistics.history, states,
                        self.statistics.training_seconds())  # fmt: skip


class StopOnInterrupt(keras.callbacks.Callback):
    """The first Ctrl-C (SIGINT) ends training after the current batch instead of killing it;
    a second one interrupts at once."""

    def __init__(self):
        super().__init__()
        self.interrupted = False

    def on_train_begin(self, logs=None):
        self.previous = signal.signal(signal.SIGINT, self._handle)

    def on_train_end(self, logs=None):
        signal.signal(signal.SIGINT, self.previous)

    def _handle(self, signum, frame):
        if self.interrupted:
            raise KeyboardInterrupt
        self.interrupted = True
        self.model.stop_training = True


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """Keras EarlyStopping whose wait count and best score survive a resume."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.restored = None

    def set_state(self, state):
        self.restored = state

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.restored:
            self.wait, self.best = self.restored["wait"], self.restored["best"]

    def get_state(self):
        return {"wait": self.wait, "best": None if self.best is None else float(self.best)}
