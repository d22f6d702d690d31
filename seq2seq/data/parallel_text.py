"""The user's own parallel text files, named ``{prefix}.{lang}`` or ``{prefix}.{lang}.gz``.

Files are UTF-8, one sentence a line (lines split as `seq2seq.lines` says: LF, CRLF or CR), line
N of the source file aligned with line N of the target file. Empty and whitespace-only lines are
**kept**, so the two sides stay aligned and the pipeline can drop and count them later. Invalid
UTF-8, NUL bytes, empty files and files of different line counts are rejected with the file (and
line) named.

The builder config name hashes the absolute paths, sizes and modification times of all six files,
so editing a file makes the next run prepare a fresh copy (older copies stay in data_dir).
"""

import dataclasses
import hashlib
import json
import os

import tensorflow as tf
import tensorflow_datasets as tfds

from seq2seq import lines
from seq2seq.data import prepared

SPLITS = ("train", "validation", "test")


@dataclasses.dataclass(eq=False)
class ParallelTextConfig(tfds.core.BuilderConfig):
    """Which files to read; build it with `make_config`.

    Attributes:
        files: ``(split, source_path, target_path)`` triples, absolute paths.
        source_language: Source language suffix, e.g. ``de``.
        target_language: Target language suffix, e.g. ``en``.
    """

    files: tuple[tuple[str, str, str], ...] = ()
    source_language: str = ""
    target_language: str = ""


def _fingerprint(paths: list[str]) -> str:
    """Returns a short hash of the paths, sizes and modification times (nanoseconds)."""
    stats = [(path, os.stat(path).st_size, os.stat(path).st_mtime_ns) for path in paths]
    return hashlib.sha256(json.dumps(stats).encode()).hexdigest()[:16]


def make_config(
    *, train_prefix, validation_prefix, test_prefix, source_language, target_language
) -> ParallelTextConfig:
    """Locates the six files and builds a config named after their fingerprint.

    Raises:
        FileNotFoundError: A file exists neither plain nor gzipped (both paths are named).
    """
    prefixes = {"train": train_prefix, "validation": validation_prefix, "test": test_prefix}
    files = tuple(
        (split, lines.resolve(prefix, source_language), lines.resolve(prefix, target_language))
        for split, prefix in prefixes.items()
    )
    paths = [path for _, source, target in files for path in (source, target)]
    return ParallelTextConfig(
        name=f"{source_language}-{target_language}-{_fingerprint(paths)}",
        description=f"Parallel text {source_language}->{target_language}: {json.dumps(files)}",
        files=files,
        source_language=source_language,
        target_language=target_language,
    )


class ParallelText(tfds.core.GeneratorBasedBuilder):
    """TFDS builder over local parallel files; pass a `make_config` config as ``config=``."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {"source": tfds.features.Text(), "target": tfds.features.Text()}
            ),
            supervised_keys=("source", "target"),
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # Local files only.
        return {
            split: self._generate_examples(source, target)
            for split, source, target in self.builder_config.files
        }

    def _generate_examples(self, source_path: str, target_path: str):
        pairs = lines.iter_pairs(source_path, target_path)
        for index, (source, target) in enumerate(pairs):
            yield index, {"source": source, "target": target}


def load(
    *,
    data_dir: str,
    train_prefix: str,
    validation_prefix: str,
    test_prefix: str,
    source_language: str,
    target_language: str,
) -> dict[str, tf.data.Dataset]:
    """Prepares (first use, or after an edit) and reads local parallel files.

    Args:
        data_dir: TFDS data directory.
        train_prefix: Prefix of the training files, e.g. ``data/train`` for ``data/train.de``.
        validation_prefix: Prefix of the validation files.
        test_prefix: Prefix of the test files.
        source_language: Source file suffix, e.g. ``de``.
        target_language: Target file suffix, e.g. ``en``.

    Returns:
        ``{"train", "validation", "test"}`` -> datasets of ``{"source", "target"}`` strings,
        empty lines included.
    """
    config = make_config(
        train_prefix=train_prefix,
        validation_prefix=validation_prefix,
        test_prefix=test_prefix,
        source_language=source_language,
        target_language=target_language,
    )
    builder = ParallelText(data_dir=data_dir, config=config)
    prepared.prepare(builder)
    splits = {split: split for split in SPLITS}
    return prepared.read_pairs(builder, splits, source_key="source", target_key="target")
