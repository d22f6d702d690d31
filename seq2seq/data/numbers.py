"""Toy task: integers written out in German (source) and English (target) by ``num2words``.

Example: 345 -> ``"dreihundertfünfundvierzig"`` -> ``"three hundred and forty-five"``.
"""

import dataclasses

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from num2words import num2words

from seq2seq.data import prepared

SOURCE_LANGUAGE = "de"
TARGET_LANGUAGE = "en"


@dataclasses.dataclass(eq=False)
class NumbersConfig(tfds.core.BuilderConfig):
    """Options of the numbers task; `make_config` derives the name from all of them.

    Attributes:
        train_size: Number of training examples.
        validation_size: Number of validation examples.
        test_size: Number of test examples.
        min_number: Smallest number that may be drawn (inclusive).
        max_number: Largest number that may be drawn (inclusive).
        seed: Seed of the numpy generator that draws the numbers.
    """

    train_size: int = 0
    validation_size: int = 0
    test_size: int = 0
    min_number: int = 0
    max_number: int = 0
    seed: int = 0

    def sizes(self) -> dict[str, int]:
        """Returns the split names mapped to their sizes, in drawing order."""
        return {
            "train": self.train_size,
            "validation": self.validation_size,
            "test": self.test_size,
        }


def make_config(
    *, train_size, validation_size, test_size, min_number, max_number, seed
) -> NumbersConfig:
    """Validates the options and builds a config whose name encodes every one of them.

    Raises:
        ValueError: A size is below 1, the range is empty, or it holds fewer numbers than the
            three splits need together (they are disjoint).
    """
    sizes = (train_size, validation_size, test_size)
    if min(sizes) < 1:
        raise ValueError(f"numbers: split sizes must be >= 1, got {sizes}")
    available = max_number - min_number + 1
    if available < sum(sizes):
        raise ValueError(
            f"numbers: [{min_number}, {max_number}] holds {max(available, 0)} numbers, "
            f"fewer than the {sum(sizes)} needed for disjoint splits of sizes {sizes}"
        )
    name = (
        f"train{train_size}_validation{validation_size}_test{test_size}"
        f"_from{min_number}_to{max_number}_seed{seed}"
    )
    return NumbersConfig(
        name=name,
        description="Disjoint random numbers, German words -> English words.",
        train_size=train_size,
        validation_size=validation_size,
        test_size=test_size,
        min_number=min_number,
        max_number=max_number,
        seed=seed,
    )


def draw_numbers(config: NumbersConfig) -> dict[str, np.ndarray]:
    """Draws disjoint numbers for the three splits, without replacement, from the config's seed.

    Returns:
        Split names mapped to int64 arrays of numbers, in drawing order.
    """
    rng = np.random.default_rng(config.seed)
    sizes = config.sizes()
    span = config.max_number - config.min_number + 1
    drawn = rng.choice(span, size=sum(sizes.values()), replace=False) + config.min_number
    bounds = np.cumsum([0, *sizes.values()])
    return {
        split: drawn[start:stop].astype(np.int64)
        for split, start, stop in zip(sizes, bounds[:-1], bounds[1:], strict=True)
    }


class Numbers(tfds.core.GeneratorBasedBuilder):
    """TFDS builder of the numbers task; pass a `make_config` config as ``config=``."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "number": tf.int64,
                    SOURCE_LANGUAGE: tfds.features.Text(),
                    TARGET_LANGUAGE: tfds.features.Text(),
                }
            ),
            supervised_keys=(SOURCE_LANGUAGE, TARGET_LANGUAGE),
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # Nothing to download.
        numbers = draw_numbers(self.builder_config)
        return {split: self._generate_examples(values) for split, values in numbers.items()}

    def _generate_examples(self, values):
        for index, number in enumerate(values.tolist()):
            yield (
                index,
                {
                    "number": number,
                    SOURCE_LANGUAGE: num2words(number, lang="de"),
                    TARGET_LANGUAGE: num2words(number),
                },
            )


def load(
    *, data_dir: str, train_size, validation_size, test_size, min_number, max_number, seed
) -> dict[str, tf.data.Dataset]:
    """Prepares (first use only) and reads the numbers task under ``data_dir``.

    Args:
        data_dir: TFDS data directory.
        train_size: Number of training examples.
        validation_size: Number of validation examples.
        test_size: Number of test examples.
        min_number: Smallest number that may be drawn (inclusive).
        max_number: Largest number that may be drawn (inclusive).
        seed: Seed of the draw; same options -> same examples in the same order.

    Returns:
        ``{"train", "validation", "test"}`` -> datasets of German source, English target.
    """
    config = make_config(
        train_size=train_size,
        validation_size=validation_size,
        test_size=test_size,
        min_number=min_number,
        max_number=max_number,
        seed=seed,
    )
    builder = Numbers(data_dir=data_dir, config=config)
    prepared.prepare(builder)
    splits = {split: split for split in config.sizes()}
    return prepared.read_pairs(
        builder, splits, source_key=SOURCE_LANGUAGE, target_key=TARGET_LANGUAGE
    )
