"""`model.fit` with the run's callbacks, assembled here in the order they must run.

Keras calls its callbacks in list order at every hook, and these depend on one another:

1. `EpochStart` points the training data at the epoch (and, after a mid-epoch resume, skips the
   batches already trained and restores their metric totals) before anything reads them.
2. `StopConditions` decides after each batch whether training stops (a non-finite loss, Ctrl-C,
   the time budget), before the others see the batch.
3. `TrainingStatistics` adds perplexity, learning rate, seconds and tokens/s to the epoch's
   logs, and starts the epoch's history entry, so that every later callback sees them.
4. `DevEvaluation` computes dev BLEU and tells its listeners, in order: plateau decay, early
   stopping, then `CheckpointKeeper` (the best checkpoint); it adds `dev_bleu` to the logs.
5. `ReleaseFreeMemory` hands the heap's free pages back.
6. `CheckpointKeeper` writes last, epoch and (before any dev BLEU) best weights.
7. `CompleteHistory` copies into the history entry what 4-6 added to the logs.
8. `ResumeCheckpoint` saves the resumable state, the completed history included.
9. `EpochLog` and `ScalarLogger` write the logs to the log and TensorBoard; the profiler, if
   asked, comes last.

The objects that survive a resume (`get_state` / `set_state`) are named in `_stateful`.
"""

import functools
import math
import sys
import warnings
from dataclasses import dataclass

import keras

from seq2seq.run_folder import RunFolder
from seq2seq.training import optim
from seq2seq.training.checkpoints import CheckpointKeeper
from seq2seq.training.memory import ReleaseFreeMemory
from seq2seq.training.progress import (
    CompleteHistory,
    EpochLog,
    ScalarLogger,
    TrainingStatistics,
    optimizer_step,
)
from seq2seq.training.resume import EpochStart, ResumeCheckpoint
from seq2seq.training.stopping import DIVERGENCE_FACTOR, EarlyStopping, StopConditions


class TrainingInterrupted(Exception):
    """Ctrl-C stopped training; the message says how to resume."""


@dataclass
class _Callbacks:
    """The run's callbacks and listeners, by role."""

    epoch_start: EpochStart
    stop: StopConditions
    statistics: TrainingStatistics
    keeper: CheckpointKeeper
    listeners: list  # of dev BLEU, before the keeper: plateau decay, early stopping
    resume: ResumeCheckpoint | None = None


def fit(model, train, validation, *, run_folder, trainer, train_stats, position, dev, resume=None):
    """Trains `model` as `trainer` (a `seq2seq.config.TrainerConfig`) says; returns the per-epoch
    logs and whether the time budget stopped training.

    Args:
        train, validation: the datasets; `position` is the training data's `DataPosition`.
        run_folder: a `RunFolder`, where checkpoints and TensorBoard logs go.
        train_stats: the training data's counts (`pipeline.pair_statistics`).
        dev: the `DevEvaluation` callback.
        resume: a `ResumeState`: its saved state, if any, is restored and training continues
            where it stopped (mid-epoch too). None: no resumable state.

    Raises:
        FloatingPointError: the loss became NaN or infinite (the message says where).
        TrainingInterrupted: Ctrl-C; the state is saved.
    """
    run_folder = RunFolder(run_folder)
    restored = resume.restore() if resume else None
    callbacks = _make_callbacks(model, run_folder, trainer, train_stats, position, restored)
    stateful = _stateful(callbacks)
    for name, obj in stateful.items():
        if restored and name in restored["callbacks"]:
            obj.set_state(restored["callbacks"][name])
    dev.listeners = [*callbacks.listeners, callbacks.keeper]
    if resume:
        callbacks.resume = ResumeCheckpoint(
            resume,
            callbacks.statistics,
            stateful,
            callbacks.epoch_start,
            callbacks.stop,
            trainer.checkpoint_every_n_steps,
        )
    ordered = _in_order(callbacks, dev, run_folder, trainer)
    _run_epochs(model, train, validation, ordered, restored, trainer.epochs)
    if callbacks.stop.failure:
        raise FloatingPointError(callbacks.stop.failure_message(run_folder.last_weights))
    if callbacks.stop.interrupted:
        raise TrainingInterrupted(
            f"interrupted: the run is saved in {run_folder.resume} after "
            f"{optimizer_step(model)} steps; run the same command with the same "
            "hydra.run.dir to resume where it stopped"
        )
    return callbacks.statistics.history, callbacks.stop.out_of_time


def _make_callbacks(model, run_folder, trainer, train_stats, position, restored):
    restored = restored or {}
    partial = None
    if restored.get("epoch_step"):
        partial = (restored["epoch"], restored["epoch_step"], restored["epoch_seconds"])
    statistics = TrainingStatistics(
        train_stats["source_tokens"],
        train_stats["target_tokens"],
        restored.get("history", ()),
        partial,
    )
    used = statistics.training_seconds() + restored.get("epoch_seconds", 0.0)
    listeners = []
    if trainer.schedule == "plateau":
        listeners.append(
            optim.ReduceOnPlateau(model, trainer.plateau_factor, trainer.plateau_patience)
        )
    if trainer.early_stopping_patience:
        listeners.append(EarlyStopping(model, trainer.early_stopping_patience))
    stop = StopConditions(trainer.max_minutes, used, _loss_ceiling(model))
    return _Callbacks(
        epoch_start=EpochStart(position, restored or None),
        stop=stop,
        statistics=statistics,
        keeper=CheckpointKeeper(
            run_folder, trainer.keep_checkpoints, stop, getattr(model, "weight_average", None)
        ),
        listeners=listeners,
    )


def _loss_ceiling(model):
    """`DIVERGENCE_FACTOR` times the cross-entropy of a uniform guess over the target pieces."""
    vocabulary = getattr(model, "target_vocabulary_size", None)
    return DIVERGENCE_FACTOR * math.log(vocabulary) if vocabulary else math.inf


def _stateful(callbacks):
    """What the resumable state saves, by name."""
    named = {"checkpoints": callbacks.keeper}
    for listener in callbacks.listeners:
        named[type(listener).__name__] = listener
    return named


def _in_order(callbacks, dev, run_folder, trainer):
    """The callbacks in the order of the module docstring."""
    ordered = [callbacks.epoch_start, callbacks.stop, callbacks.statistics, dev]
    if trainer.release_memory_every_n_steps:
        ordered.append(ReleaseFreeMemory(trainer.release_memory_every_n_steps))
    ordered += [callbacks.keeper, CompleteHistory(callbacks.statistics)]
    if callbacks.resume:
        ordered.append(callbacks.resume)
    ordered.append(EpochLog(trainer.epochs))
    ordered.append(ScalarLogger(str(run_folder.tensorboard), trainer.log_every_n_steps))
    if trainer.profile_steps:
        ordered.append(
            keras.callbacks.TensorBoard(
                str(run_folder.tensorboard),
                update_freq="epoch",
                profile_batch=tuple(trainer.profile_steps),
            )
        )
    return ordered


def _run_epochs(model, train, validation, callbacks, restored, epochs):
    # Datasets of unknown length make Keras warn at every epoch end although every epoch runs.
    warnings.filterwarnings("ignore", message="Your input ran out of data")
    warnings.filterwarnings("ignore", message="`shuffle=True` was passed")
    verbose = 1 if sys.stdout.isatty() else 0  # a progress bar on a terminal; `EpochLog` too
    run = functools.partial(
        model.fit, train, validation_data=validation, callbacks=callbacks, verbose=verbose
    )
    done = restored["epoch"] if restored else 0
    if restored and restored.get("epoch_step") and done < epochs:
        # Keras caps every epoch at the length of the first one it saw (tensorflow#41571): the
        # rest of a resumed epoch gets a fit call of its own.
        run(initial_epoch=done, epochs=done + 1)
        done += 1
    if done < epochs and not model.stop_training:
        run(initial_epoch=done, epochs=epochs)
