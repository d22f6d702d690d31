"""Which tokenized training pairs are trained on: the rules, and why a pair is dropped.

Every split drops empty pairs (a fully masked row breaks the cuDNN kernel). The training split
may also drop pairs longer than the length limits (instead of truncating them: a truncated
target teaches the model to stop mid-sentence) and pairs whose sides' lengths differ by more
than a ratio (misaligned pairs, as Moses's `clean-corpus-n.perl` drops them). Lengths are in
pieces, before truncation.
"""

from dataclasses import dataclass

import tensorflow as tf

REASONS = ("empty", "too_long", "length_ratio")  # a pair is counted under its first reason


@dataclass(frozen=True)
class PairFilter:
    """Args:
    drop_long: drop the pairs that `tokenize_pairs` truncated (either side).
    max_length_ratio: drop the pairs whose longer side has more than this many times the
        pieces of the shorter side (None: keep them).
    """

    drop_long: bool = False
    max_length_ratio: float | None = None

    def reasons(self, example):
        """{reason: bool tensor}: whether `example` is dropped first for that reason."""
        source, target = _lengths(example)
        empty = tf.logical_or(tf.equal(source, 0), tf.equal(target, 0))
        too_long = tf.constant(False)
        if self.drop_long:
            too_long = tf.logical_or(example["source_truncated"], example["target_truncated"])
        lopsided = tf.constant(False)
        if self.max_length_ratio:
            longer, shorter = tf.maximum(source, target), tf.maximum(tf.minimum(source, target), 1)
            ratio = tf.cast(longer, tf.float64) / tf.cast(shorter, tf.float64)
            lopsided = ratio > self.max_length_ratio
        too_long = tf.logical_and(too_long, tf.logical_not(empty))
        lopsided = tf.logical_and(lopsided, tf.logical_not(tf.logical_or(empty, too_long)))
        return {"empty": empty, "too_long": too_long, "length_ratio": lopsided}

    def keep(self, example):
        return tf.logical_not(tf.reduce_any(tf.stack(list(self.reasons(example).values()))))


def _lengths(example):
    """The pieces of each side before truncation (`tokenize_pairs`'s `*_length`), else now."""
    source = example.get("source_length", tf.size(example["source"]))
    target = example.get("target_length", tf.size(example["target"]))
    return source, target
