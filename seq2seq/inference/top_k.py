"""The k largest of each sentence's beam-times-vocabulary scores, in one cheap pass over them.

Beam search picks its 2K candidates from `K * V` scores a sentence at every step; `tf.math.top_k`
over the full rows was the largest cost of a step after the matmuls. Cutting each row into chunks
and running `top_k` only on the chunks with the largest maxima gives the same values, indices and
tie order, at a fraction of the cost.
"""

import tensorflow as tf

# At most this many scores a chunk (any size from 32 to 256 runs at about the same speed on CPU);
# plain `top_k` when `V` has no chunk size of at least `MIN_CHUNK`. A step function that pads its
# vocabulary to a multiple of `CHUNK` spares the search padding its scores at every step.
CHUNK = 64
MIN_CHUNK = 4


def scaled_top_k(scores, scale, k):
    """The `k` largest of `scores * scale[:, :, None]` for each sentence, without the product.

    Args:
        scores: `(B, K, V)` non-negative scores (probabilities).
        scale: `(B, K)` positive factors, one a beam.
        k: how many to pick a sentence.

    Returns:
        `(values, indices)`, each `(B, k)`, best first; indices into the flat `K * V'` scores,
        where `V'` is `V` padded to a multiple of the chunk (`padded_width`).
    """
    chunk = chunk_size(scores.shape[-1])
    if chunk is None:
        flat = tf.reshape(scores * scale[:, :, None], [tf.shape(scores)[0], -1])
        return tf.math.top_k(flat, k=k)
    scores = _pad_to_multiple(scores, chunk)  # (B, K, V'): V' divisible by the chunk
    chunk_scale = tf.repeat(scale, scores.shape[-1] // chunk, axis=1)
    flat = tf.reshape(scores, [tf.shape(scores)[0], -1])
    return _top_k_by_chunks(flat, k, chunk, chunk_scale)


def padded_width(vocab_size):
    """`V'`: the vocabulary width `scaled_top_k`'s indices count in."""
    chunk = chunk_size(vocab_size)
    return vocab_size if chunk is None else vocab_size + (-vocab_size % chunk)


def chunk_size(vocab_size):
    """Chunk size for `K * V` scores, or None for plain `top_k`.

    The largest divisor of `V` up to `CHUNK` and `V // 2`, else (a prime `V`, as the 5,483 German
    pieces of the Multi30k recipes) `min(CHUNK, V // 2)`, with the scores padded. At most `V // 2`,
    so that a sentence has `>= 2K` chunks. None when `V` is not static or `V // 2 < MIN_CHUNK`.
    """
    if vocab_size is None or vocab_size // 2 < MIN_CHUNK:
        return None
    largest = min(CHUNK, vocab_size // 2)
    sizes = range(largest, MIN_CHUNK - 1, -1)
    return next((size for size in sizes if vocab_size % size == 0), largest)


def _top_k_by_chunks(x, k, chunk, chunk_scale):
    """`tf.math.top_k(x * scale, k)` on rows `x` `(B, M)`, the scale `(B, M / chunk)` per chunk.

    Each row is cut into `M / chunk` chunks (`chunk` must divide `M`, and `M / chunk >= k`); the
    `k` chunks with the largest scaled maxima hold the `k` largest entries (a chunk outside them
    has `k` better chunk maxima, so `k` better entries), and `top_k` runs on those `k * chunk`
    entries only. Kept in index order, they give the same values, indices and tie order as
    `tf.math.top_k`. Scaling the maxima is exact, since rounding keeps the order.
    """
    rows = tf.shape(x)[0]
    chunks = tf.reshape(x, [rows, -1, chunk])  # (B, M / chunk, chunk)
    maxima = tf.reduce_max(chunks, axis=-1) * chunk_scale
    _, best = tf.math.top_k(maxima, k)
    best = tf.sort(best, axis=-1)  # (B, k) in index order
    picked = tf.gather(chunks, best, batch_dims=1)  # (B, k, chunk)
    picked *= tf.gather(chunk_scale, best, batch_dims=1)[:, :, None]
    values, pos = tf.math.top_k(tf.reshape(picked, [rows, -1]), k)
    return values, tf.gather(best, pos // chunk, batch_dims=1) * chunk + pos % chunk


def _pad_to_multiple(scores, chunk, value=0.0):
    """`scores` `(B, K, V)` with `value` appended to each row up to a multiple of `chunk`.

    `top_k` ranks the padding after every real score equal to it (of equal values it takes the
    lower index first), so no padded token is ever selected while a row has `2K` entries above
    `value` (0, for probabilities: each live beam has `V - 3` of them).
    """
    extra = -scores.shape[-1] % chunk
    if not extra:
        return scores
    return tf.pad(scores, [[0, 0], [0, 0], [0, extra]], constant_values=value)
