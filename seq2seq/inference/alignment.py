"""Word alignments from attention weights: pieces merged into whitespace-separated words.

A SentencePiece piece that starts with "\u2581" starts a word; the pieces after it, up to the next
such piece, belong to the same word. The attention of a target word on a source word is the sum
of its pieces' weights on the source word's pieces; each target word is aligned to the source
word it attends to most. The result is in Pharaoh format, `i-j` pairs (source word i, target word
j, from 0) in target order, as fast_align and Moses read it.
"""

import tensorflow as tf

WORD_START = "\u2581"


def word_indices(pieces, words):
    """int32 `(B, P)`: the word of each piece (`(B, P)` strings), at most `words - 1` (`(B,)`
    whitespace-separated words of the text)."""
    starts = tf.strings.substr(pieces, 0, len(WORD_START.encode("utf-8"))) == WORD_START
    index = tf.cumsum(tf.cast(starts, tf.int32), axis=1) - 1
    return tf.clip_by_value(index, 0, tf.maximum(words - 1, 0)[:, None])


def word_counts(text):
    """int32 `(B,)`: whitespace-separated words of each string."""
    return tf.cast(tf.strings.split(tf.strings.strip(text)).row_lengths(), tf.int32)


def word_attention(attention, source, target):
    """`(B, Wt, Ws)` attention of target words on source words.

    Args:
        attention: `(B, T, S)` weights of target pieces on source pieces.
        source, target: `(word_indices, real_pieces)` of each side, `(B, S)` / `(B, T)`.
    """
    depth = tf.reduce_max(tf.concat([source[0], target[0]], axis=1)) + 1
    source_words = tf.one_hot(source[0], depth) * tf.cast(source[1], tf.float32)[:, :, None]
    target_words = tf.one_hot(target[0], depth) * tf.cast(target[1], tf.float32)[:, :, None]
    return tf.einsum("btv,bts,bsw->bvw", target_words, attention, source_words)


def pharaoh(attention, source_words, target_words):
    """`(B,)` strings of `i-j` pairs: each target word `j < target_words` with the source word
    it attends to most (`attention` `(B, Wt, Ws)`); "" when a side has no words."""
    columns = tf.range(tf.shape(attention)[2])[None, None, :]
    attention = tf.where(columns < source_words[:, None, None], attention, -1.0)
    best = tf.argmax(attention, axis=2, output_type=tf.int32)  # (B, Wt)
    j = tf.broadcast_to(tf.range(tf.shape(best)[1])[None, :], tf.shape(best))
    pairs = tf.strings.as_string(best) + "-" + tf.strings.as_string(j)
    real = (j < target_words[:, None]) & (source_words > 0)[:, None]
    return tf.strings.reduce_join(tf.ragged.boolean_mask(pairs, real), axis=1, separator=" ")
