"""Data sources: every corpus becomes TFDS-prepared splits of ``{"source", "target"}`` strings.

Each source is a TFDS builder in ``seq2seq/datasets/`` (the catalog source reuses the TFDS
catalog). Data is prepared under ``data_dir`` on first use and reused afterwards; splits are read
in a fixed order (``disable_shuffling``), so runs are reproducible. Shuffling, filtering of empty
lines and batching belong to the input pipeline, not here.

Sources and their keyword options (defaults live in the YAML configs):

- ``numbers``: train_size, validation_size, test_size, min_number, max_number, seed.
- ``multi30k``: source_language, target_language (en/de/fr/cs, one of them en), manual_dir.
- ``text``: train_prefix, validation_prefix, test_prefix, source_language, target_language.
- ``tfds``: name, and optionally source_language, target_language, splits.
"""

import os
from collections.abc import Callable

import tensorflow as tf

from seq2seq.datasets import catalog, multi30k, numbers, text

SPLITS = ("train", "validation", "test")

Loader = Callable[..., dict[str, tf.data.Dataset]]

SOURCES: dict[str, Loader] = {
    "numbers": numbers.load,
    "multi30k": multi30k.load,
    "text": text.load,
    "tfds": catalog.load,
}


def get_loader(source: str) -> Loader:
    """Returns the loader function registered under ``source``.

    Raises:
        ValueError: ``source`` is not registered; the message lists the choices.
    """
    try:
        return SOURCES[source]
    except KeyError:
        choices = ", ".join(sorted(SOURCES))
        raise ValueError(f"unknown data source {source!r}; choose one of: {choices}") from None


def load_splits(source: str, *, data_dir: str, **options) -> dict[str, tf.data.Dataset]:
    """Prepares (first use only) and reads the train/validation/test splits of a data source.

    Args:
        source: Registered source name: ``numbers``, ``multi30k``, ``text`` or ``tfds``.
        data_dir: TFDS data directory where prepared data is written and looked up.
        **options: The source's keyword options (see the module docstring).

    Returns:
        ``{"train", "validation", "test"}`` mapped to datasets of
        ``{"source": tf.string scalar, "target": tf.string scalar}``, in a deterministic order.
        The ``text`` source keeps empty and whitespace-only lines.

    Raises:
        ValueError: Unknown source or invalid options/data (the message says which).
        FileNotFoundError: A raw data file is missing (the message names it).
        ConnectionError: A ``tfds`` dataset is not prepared and cannot be downloaded.
    """
    loader = get_loader(source)
    data_dir = os.fspath(data_dir)
    if "://" not in data_dir:  # Keep gs:// and other remote paths as they are.
        data_dir = os.path.abspath(os.path.expanduser(data_dir))
    datasets = loader(data_dir=data_dir, **options)
    return {split: datasets[split] for split in SPLITS}


def describe(source: str, **options) -> str:
    """Returns a one-line description of a source and its options, for logs.

    Example: ``numbers(max_number=999999, min_number=0, seed=0, ...)``.
    """
    get_loader(source)
    arguments = ", ".join(f"{key}={value!r}" for key, value in sorted(options.items()))
    return f"{source}({arguments})"
