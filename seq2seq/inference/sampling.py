"""Sampling one translation a sentence: temperature, top-k and nucleus (top-p) filtering.

Each step draws the next token from the model's distribution at `temperature`, restricted to
the `top_k` most likely tokens (0: all) and to the smallest set of most likely tokens whose
probability reaches `top_p` (1.0: all), renormalised; temperature 0 is greedy search. It runs as
greedy search with another choice of token (`greedy.greedy_search(choose=...)`).

The randomness of a sentence depends only on the seed and the sentence itself: its uniform
number at step t is a hash of (seed, sentence, t), never a random op's state or the sentence's
place in the batch. So the same seed gives a sentence the same translation alone or in any
batch (and two copies of a sentence in one batch the same one), on every machine.
"""

import tensorflow as tf

from seq2seq.inference.greedy import arg_max

_BUCKETS = 2**53  # uniform numbers with float64's 53 bits


def sentence_keys(text, seed):
    """int64 `(B,)`: one key a sentence, from the seed and the sentence's text."""
    joined = tf.strings.join([tf.strings.as_string(seed), text], separator="\x1f")
    return tf.strings.to_hash_bucket_fast(joined, _BUCKETS)


def uniforms(keys, step):
    """float64 `(A,)` in [0, 1): the uniform number of each sentence's key at `step`."""
    joined = tf.strings.join([tf.strings.as_string(keys), tf.strings.as_string(step)], ":")
    return tf.cast(tf.strings.to_hash_bucket_fast(joined, _BUCKETS), tf.float64) / _BUCKETS


def filtered_probs(logits, temperature, top_k, top_p):
    """`(N, V)` sampling probabilities: softmax at `temperature` (> 0), then top-k and top-p."""
    probs = tf.nn.softmax(logits / temperature, axis=-1)
    vocab = tf.shape(probs)[-1]

    def keep_top_k():
        kth = tf.math.top_k(probs, tf.minimum(top_k, vocab)).values[:, -1:]
        return tf.where(probs >= kth, probs, 0.0)

    probs = tf.cond(top_k > 0, keep_top_k, lambda: probs)

    def keep_nucleus():
        ranked = tf.sort(probs, axis=-1, direction="DESCENDING")
        before = tf.cumsum(ranked, axis=-1, exclusive=True) / tf.reduce_sum(probs, -1, True)
        kept = tf.reduce_sum(tf.cast(before < top_p, tf.int32), axis=-1)  # >= 1
        smallest = tf.gather(ranked, kept - 1, batch_dims=1)[:, None]
        return tf.where(probs >= smallest, probs, 0.0)

    return tf.cond(top_p < 1.0, keep_nucleus, lambda: probs)


def draw(probs, u):
    """The token of each row whose cumulative probability first exceeds `u` times the row's
    total: a draw from `probs` (unnormalised, `(N, V)`); tokens of probability 0 never come."""
    cdf = tf.cumsum(tf.cast(probs, tf.float64), axis=-1)
    first_above = tf.searchsorted(cdf, (u * cdf[:, -1])[:, None], side="right")[:, 0]
    # At most the last token of non-zero probability, should rounding put u * total at the top.
    last = tf.shape(probs)[-1] - 1 - tf.argmax(tf.reverse(probs, [-1]) > 0, -1, tf.int32)
    return tf.minimum(tf.cast(first_above, tf.int32), last)


def sampler(temperature, top_k, top_p):
    """The `choose` of `greedy_search` that samples; reads `memory["sample_keys"]`."""

    def choose(logits, probs, step, memory):
        def sample():
            filtered = filtered_probs(logits, temperature, top_k, top_p)
            return draw(filtered, uniforms(memory["sample_keys"], step))

        greedy = lambda: arg_max(logits, probs, step, memory)  # noqa: E731
        return tf.cond(temperature > 0.0, sample, greedy)

    return choose


def check_sampling(temperature, top_k, top_p):
    """`tf.debugging.Assert` ops for sampling settings given as tensors."""
    return [
        tf.debugging.Assert(temperature >= 0.0, ["temperature must be >= 0, got", temperature]),
        tf.debugging.Assert(top_k >= 0, ["top_k must be >= 0 (0: off), got", top_k]),
        tf.debugging.Assert(
            (top_p > 0.0) & (top_p <= 1.0), ["top_p must be in (0, 1] (1: off), got", top_p]
        ),
    ]
