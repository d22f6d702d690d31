"""Prepare a TFDS builder once and read its splits as ``{"source", "target"}`` string pairs."""

import contextlib
import io
import logging
import time

import tensorflow as tf
import tensorflow_datasets as tfds

log = logging.getLogger(__name__)


class _WithoutTfdsNoise(logging.Filter):
    """Drops two TFDS warnings that are no news here: a builder given a config that its class
    does not list (the numbers and text sources make one from their options every run, and TFDS
    prints it whole), and a data set not prepared yet (`prepare` says so)."""

    NOISE = ("Using custom data configuration", "Variant folder")

    def filter(self, record):
        return not str(record.msg).startswith(self.NOISE)


logging.getLogger("absl").addFilter(_WithoutTfdsNoise())


def prepare(builder: tfds.core.DatasetBuilder, manual_dir=None) -> None:
    """Runs ``download_and_prepare`` unless the data already exists under the builder's data_dir,
    saying so in the log (the first run of a data set prepares it).

    TFDS writes into a temporary ``*.incomplete*`` folder and renames it at the end, so a failed
    preparation leaves nothing that a later call would mistake for prepared data.

    Args:
        builder: Any TFDS builder.
        manual_dir: TFDS's manual download folder, for builders that read one.
    """
    if builder.is_prepared():
        return
    start = time.monotonic()
    log.info("preparing %s in %s (the first time only)", builder.info.full_name, builder.data_dir)
    config = tfds.download.DownloadConfig(try_download_gcs=False, manual_dir=manual_dir)
    with contextlib.redirect_stdout(io.StringIO()):  # TFDS prints what the log lines say
        builder.download_and_prepare(download_config=config)
    counts = {name: split.num_examples for name, split in builder.info.splits.items()}
    log.info("prepared %s in %.0f s: %s", builder.info.full_name, time.monotonic() - start, counts)


def read_pairs(
    builder: tfds.core.DatasetBuilder,
    splits: dict[str, str],
    *,
    source_key: str,
    target_key: str,
    group=None,
) -> dict[str, tf.data.Dataset]:
    """Reads prepared splits in file order and renames two text features to source/target.

    Args:
        builder: A prepared builder.
        splits: Maps our split names (train/validation/test) to the builder's split names.
        source_key: Feature holding the source sentence (e.g. ``"de"``).
        target_key: Feature holding the target sentence (e.g. ``"en"``).
        group: Optional function of an example giving its evaluation group (a tf.string):
            exact match is reported per group (the numbers task's digit counts).

    Returns:
        Our split names mapped to datasets of ``{"source": tf.string, "target": tf.string}``
        (and ``"group"``), streamed from the files (never cached in memory).
    """

    def rename(example):
        renamed = {"source": example[source_key], "target": example[target_key]}
        if group is not None:
            renamed["group"] = group(example)
        return renamed

    # TFDS caches a split smaller than 250 MiB in memory on its first pass, a large training set
    # included. Streamed instead; the callers cache what is small.
    streamed = tfds.ReadConfig(try_autocache=False)
    return {
        ours: builder.as_dataset(split=theirs, shuffle_files=False, read_config=streamed).map(
            rename
        )
        for ours, theirs in splits.items()
    }
