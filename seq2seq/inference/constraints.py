"""Decoding constraints beyond the model: n-gram blocking and a forced target prefix.

- `no_repeat_ngram_size` n > 0: a hypothesis never holds the same n tokens twice; the token that
  would complete an n-gram already in it gets probability 0 (fairseq's and OpenNMT's option).
- A forced `prefix`: the first tokens of every hypothesis are given (interactive translation,
  a target-language tag). Each forced token keeps the probability the model gives it, so a
  hypothesis scores as it would without the forcing (fairseq's `prefix_tokens`).

`min_length` (EOS forbidden before it) lives in `search.masked_logits`. Each setting is a Python
number or a scalar tensor (an input of a SavedModel signature); the value that turns one off (0,
an empty prefix) costs nothing when given as a Python number.
"""

from typing import NamedTuple

import tensorflow as tf


class Prefix(NamedTuple):
    """Forced first tokens, one row per sentence."""

    ids: tf.Tensor  # (B, P) int32, 0-padded
    lengths: tf.Tensor  # (B,) int32


def is_off(setting):
    """True for a Python 0 or None: the constraint is not in the graph at all."""
    return setting is None or (not tf.is_tensor(setting) and not setting)


def banned_by_ngrams(seq, step, n, vocabulary):
    """`(N, V)` bool: the tokens that would repeat an n-gram of a hypothesis.

    Args:
        seq: int32 `(N, L)` hypotheses; only positions `< step` are read.
        step: int32 scalar, the position about to be generated.
        n: int32 scalar `>= 1`, the n-gram size.
        vocabulary: `V`, the number of logits.
    """
    seq = tf.convert_to_tensor(seq, tf.int32)
    n = tf.convert_to_tensor(n, tf.int32)
    length = tf.shape(seq)[1]
    starts = tf.range(length)  # j: the n-gram seq[j : j + n] is complete before `step`
    match = tf.broadcast_to((starts + n - 1 < step)[None, :], tf.shape(seq))  # (N, L)

    def same_token(i, match):
        # seq[j + i] against the i-th of the last n - 1 tokens, seq[step - n + 1 + i]
        earlier = tf.gather(seq, tf.minimum(starts + i, length - 1), axis=1)
        last = tf.gather(seq, tf.clip_by_value(step - n + 1 + i, 0, length - 1), axis=1)
        return i + 1, match & tf.equal(earlier, last[:, None])

    _, match = tf.while_loop(lambda i, _: i < n - 1, same_token, (tf.constant(0), match))
    completing = tf.gather(seq, tf.minimum(starts + n - 1, length - 1), axis=1)  # (N, L)
    where = tf.cast(tf.where(match), tf.int32)  # (M, 2): [row, start]
    tokens = tf.gather_nd(completing, where)
    indices = tf.stack([where[:, 0], tokens], axis=1)
    hits = tf.scatter_nd(indices, tf.ones_like(tokens), [tf.shape(seq)[0], vocabulary])
    return hits > 0


def forced_tokens(prefix, rows_per_sentence, step):
    """The prefix token of each row at `step`, and whether it is forced: `(N,)`, `(N,)` bool.

    Rows come in groups of `rows_per_sentence` per sentence (a sentence's beams).
    """
    ids = tf.pad(prefix.ids, [[0, 0], [0, 1]])  # a column past the longest prefix
    column = tf.minimum(step, tf.shape(prefix.ids)[1])
    token = tf.repeat(tf.gather(ids, column, axis=1), rows_per_sentence)
    forced = tf.repeat(step < prefix.lengths, rows_per_sentence)
    return token, forced


def keep_forced(probs, token, forced):
    """`probs` `(N, V)` with every token but the forced one at 0 in the forced rows; the forced
    token keeps its probability."""
    one_hot = tf.one_hot(token, tf.shape(probs)[-1], dtype=probs.dtype)
    return tf.where(forced[:, None], probs * one_hot, probs)
