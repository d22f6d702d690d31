"""Handing the C heap's free pages back to the system during training.

glibc's malloc keeps the pages of freed blocks resident. Over the 4-epoch reference training,
resident memory rose by 25-80 MiB an epoch although the model and batches stay the same size
(README, Performance). `malloc_trim(0)` returns every free page of every arena (glibc >= 2.8).
No maintained Python library wraps it; it is one libc call.
"""

import ctypes
import ctypes.util
import functools
import gc

import keras


@functools.cache
def _malloc_trim():
    """glibc's `malloc_trim`, or None where the C library has none (musl, macOS, Windows)."""
    name = ctypes.util.find_library("c")  # runs ldconfig: looked up once
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


def release_free_memory():
    """Returns the heap's free pages to the system; False where that is not possible."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def release_training_graphs(model):
    """Drops the traced training and validation steps once training is over, and their pages.

    Their graphs, and TensorFlow's optimized copies of them, stay alive as long as the model
    refers to them; the final evaluation and the export that end a run then need memory on top.
    Keras traces them again if the model trains once more.
    """
    model.train_function = model.test_function = None
    release_unreachable()


def release_unreachable():
    """Frees what nothing refers to any more (traced functions sit in reference cycles),
    then hands the free pages back."""
    gc.collect()
    release_free_memory()


class ReleaseFreeMemory(keras.callbacks.Callback):
    """`release_free_memory` every `every_n_steps` batches and at every epoch's end."""

    def __init__(self, every_n_steps):
        super().__init__()
        self.every_n_steps = every_n_steps
        self._batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self._batches += 1
        if self._batches % self.every_n_steps == 0:
            release_free_memory()

    def on_epoch_end(self, epoch, logs=None):
        release_free_memory()
