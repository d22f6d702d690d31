"""Data sources: every corpus becomes TFDS-prepared splits of ``{"source", "target"}`` strings.

Each source is a TFDS builder in this package (the catalog source reuses the TFDS catalog). Data
is prepared under ``data_dir`` on first use and reused afterwards; splits are read in a fixed
order (``disable_shuffling``), so runs are reproducible. Shuffling, filtering of empty lines and
batching belong to the input pipeline, not here.

A source's options are the keyword arguments of its ``load`` function, taken by name from the
``data.*`` settings: the loader's signature is the one list of them.
"""

import inspect
import os
from collections.abc import Callable

import tensorflow as tf

from seq2seq.data import catalog, multi30k, numbers, parallel_text

SPLITS = ("train", "validation", "test")

Loader = Callable[..., dict[str, tf.data.Dataset]]

SOURCES: dict[str, Loader] = {
    "numbers": numbers.load,
    "multi30k": multi30k.load,
    "text": parallel_text.load,
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
        raise ValueError(
            f"data.source={source!r} is unknown; choose one of {sorted(SOURCES)}"
        ) from None


def loader_options(source: str) -> tuple[str, ...]:
    """The ``data.*`` settings that the source's loader takes (all but ``data_dir``)."""
    parameters = inspect.signature(get_loader(source)).parameters
    return tuple(name for name in parameters if name != "data_dir")


def load_splits(source: str, *, data_dir: str, **options) -> dict[str, tf.data.Dataset]:
    """Prepares (first use only) and reads the train/validation/test splits of a data source.

    Args:
        source: Registered source name: ``numbers``, ``multi30k``, ``text`` or ``tfds``.
        data_dir: TFDS data directory where prepared data is written and looked up.
        **options: The source's keyword options (its loader's arguments).

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


def load_configured_splits(data) -> dict[str, tf.data.Dataset]:
    """`load_splits` with the options of `data`, a `seq2seq.config.DataConfig`."""
    options = {name: getattr(data, name) for name in loader_options(data.source)}
    return load_splits(data.source, data_dir=data.data_dir, **options)
