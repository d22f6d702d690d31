"""Toy task: integers written out in German (source) and English (target) by ``num2words``.

Example: 345 -> ``"dreihundertfünfundvierzig"`` -> ``"three hundred and forty-five"``.

Every split is drawn the way users type numbers: the digit count uniformly first, then how
round the number is, then its digits (`draw_numbers`). Drawn uniformly from 0-999,999 instead,
90% of the numbers would have six digits and there would hardly be any below 1,000: a model
could fail every short number while its test BLEU looks perfect. There are only 1,000 numbers
of up to three digits, so these come up many times and in every split; longer ones rarely
repeat. Each example's digit count is its
evaluation `group`: exact match is reported per length.
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
        ValueError: A size is below 1 or the range is empty.
    """
    sizes = (train_size, validation_size, test_size)
    if min(sizes) < 1:
        raise ValueError(f"numbers: split sizes must be >= 1, got {sizes}")
    if not 0 <= min_number <= max_number:
        raise ValueError(f"numbers: [{min_number}, {max_number}] is not a range of numbers >= 0")
    name = (
        f"train{train_size}_validation{validation_size}_test{test_size}"
        f"_from{min_number}_to{max_number}_seed{seed}"
    )
    return NumbersConfig(
        name=name,
        description="Numbers of every length, German words -> English words.",
        train_size=train_size,
        validation_size=validation_size,
        test_size=test_size,
        min_number=min_number,
        max_number=max_number,
        seed=seed,
    )


def digit_ranges(min_number, max_number):
    """`(low, high)` of each digit count present in `[min_number, max_number]`, shortest first."""
    ranges = []
    for digits in range(len(str(min_number)), len(str(max_number)) + 1):
        low = max(min_number, 0 if digits == 1 else 10 ** (digits - 1))
        ranges.append((low, min(max_number, 10**digits - 1)))
    return ranges


def draw_numbers(config: NumbersConfig) -> dict[str, np.ndarray]:
    """Draws each split from the config's seed as users type numbers (module docstring): a digit
    count uniformly, then how many of its digits are trailing zeros (uniformly: round numbers
    such as 7,200 and 100,000 are common), then the other digits uniformly.

    Returns:
        Split names mapped to int64 arrays of numbers, in drawing order.
    """
    rng = np.random.default_rng(config.seed)
    ranges = np.asarray(digit_ranges(config.min_number, config.max_number), np.int64)
    drawn = {}
    for split, size in config.sizes().items():
        low, high = ranges[rng.integers(len(ranges), size=size)].T
        digits = np.char.str_len(high.astype(str))
        scale = 10 ** rng.integers(0, digits)  # 10 ** trailing zeros
        first, last = -(-low // scale), high // scale
        scale = np.where(first <= last, scale, 1)  # no round number of that kind in the range
        first, last = -(-low // scale), high // scale
        drawn[split] = rng.integers(first, last + 1) * scale
    return drawn


class Numbers(tfds.core.GeneratorBasedBuilder):
    """TFDS builder of the numbers task; pass a `make_config` config as ``config=``."""

    VERSION = tfds.core.Version("2.0.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release.",
        "2.0.0": "Every digit count equally likely (module docstring).",
    }
    # `tfds.builder("numbers")`: the demo's data (conf/data/numbers.yaml).
    BUILDER_CONFIGS = [
        make_config(
            train_size=20000,
            validation_size=500,
            test_size=1000,
            min_number=0,
            max_number=999999,
            seed=0,
        )
    ]

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
        ``{"train", "validation", "test"}`` -> datasets of German source, English target and
        each example's digit count as its ``group``.
    """
    config = make_config(
        train_size=train_size,
        validation_size=validation_size,
        test_size=test_size,
        min_number=min_number,
        max_number=max_number,
        seed=seed,
    )
    registered = Numbers.builder_configs.get(config.name)
    builder = Numbers(data_dir=data_dir, config=registered or config)
    prepared.prepare(builder)
    splits = {split: split for split in config.sizes()}
    return prepared.read_pairs(
        builder,
        splits,
        source_key=SOURCE_LANGUAGE,
        target_key=TARGET_LANGUAGE,
        group=lambda example: digit_group(example["number"]),
    )


def digit_group(number):
    """The evaluation group of an int64 tensor `number`: "1 digit", "2 digits", ..."""
    digits = tf.strings.length(tf.strings.as_string(tf.abs(number)))
    suffix = tf.where(digits == 1, " digit", " digits")
    return tf.strings.join([tf.strings.as_string(digits), suffix])
