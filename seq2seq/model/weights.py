"""A model's weights in a `.weights.h5` file: written atomically, and without optimizer slots.

Keras's `save_weights` also stores the optimizer's slots (Adam's two a weight: three times the
size); these files hold the weights only, since the resumable state keeps the optimizer apart
(`seq2seq.training.resume`). Files written with the slots (older runs) load all the same.
"""

import os
from pathlib import Path

import numpy as np
from keras.src.saving import saving_lib

from seq2seq.files import ensure_free_space

TEMP_SUFFIX = ".tmp.weights.h5"


def _optimizer(model):
    optimizer = getattr(model, "optimizer", None)
    return [optimizer] if optimizer is not None else []


def save_weights(model, path):
    """Writes the weights to a temp file beside `path`, fsyncs it, then renames it over `path`.

    Raises:
        OSError: the folder has too little free space, or the write failed (the path named);
            the previous file stays.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    size = sum(int(np.prod(w.shape)) * np.dtype(w.dtype).itemsize for w in model.weights)
    ensure_free_space(path.parent, size + 2**20, f"writing {path.name}")
    tmp = path.with_name(f".{path.name}.{os.getpid()}{TEMP_SUFFIX}")
    try:
        saving_lib.save_weights_only(model, str(tmp), objects_to_skip=_optimizer(model))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as error:  # h5py reports some write failures as RuntimeError
        raise OSError(f"cannot write {path}: {getattr(error, 'strerror', None) or error}") from None
    finally:
        tmp.unlink(missing_ok=True)


def load_weights(model, path):
    """Loads the weights of a `.weights.h5` file into `model`, leaving its optimizer alone."""
    saving_lib.load_weights_only(model, str(path), objects_to_skip=_optimizer(model))


def remove_stale_temp_files(directory):
    """Deletes the temp weights files that killed processes left in `directory`."""
    for stale in Path(directory).glob(f".*{TEMP_SUFFIX}"):
        stale.unlink(missing_ok=True)
