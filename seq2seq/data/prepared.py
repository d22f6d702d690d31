"""Prepare a TFDS builder once and read its splits as ``{"source", "target"}`` string pairs."""

import tensorflow as tf
import tensorflow_datasets as tfds


def prepare(builder: tfds.core.DatasetBuilder) -> None:
    """Runs ``download_and_prepare`` unless the data already exists under the builder's data_dir.

    TFDS writes into a temporary ``*.incomplete*`` folder and renames it at the end, so a failed
    preparation leaves nothing that a later call would mistake for prepared data.

    Args:
        builder: Any TFDS builder.
    """
    if builder.is_prepared():
        return
    config = tfds.download.DownloadConfig(try_download_gcs=False)
    builder.download_and_prepare(download_config=config)


def read_pairs(
    builder: tfds.core.DatasetBuilder,
    splits: dict[str, str],
    *,
    source_key: str,
    target_key: str,
) -> dict[str, tf.data.Dataset]:
    """Reads prepared splits in file order and renames two text features to source/target.

    Args:
        builder: A prepared builder.
        splits: Maps our split names (train/validation/test) to the builder's split names.
        source_key: Feature holding the source sentence (e.g. ``"de"``).
        target_key: Feature holding the target sentence (e.g. ``"en"``).

    Returns:
        Our split names mapped to datasets of ``{"source": tf.string, "target": tf.string}``,
        streamed from the files (never cached in memory).
    """

    def rename(example):
        return {"source": example[source_key], "target": example[target_key]}

    # TFDS caches a split smaller than 250 MiB in memory on its first pass, a large training set
    # included. Streamed instead; the callers cache what is small.
    streamed = tfds.ReadConfig(try_autocache=False)
    return {
        ours: builder.as_dataset(split=theirs, shuffle_files=False, read_config=streamed).map(
            rename
        )
        for ours, theirs in splits.items()
    }
