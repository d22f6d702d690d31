"""tf.data input pipeline: strings -> subword ids -> length-bucketed, right-padded batches.

The data contract: inputs `{"encoder_token_ids": [B, S], "decoder_token_ids": [B, T]}` and
labels `[B, T]` (the decoder ids shifted left by one, ending in EOS), all int32, padded with 0 on
the right (cuDNN needs right padding). Pairs with an empty source or target are dropped, since a
fully masked row breaks the cuDNN kernel.
"""

import tensorflow as tf

from seq2seq.tokenizers import BOS_ID, EOS_ID

AUTOTUNE = tf.data.AUTOTUNE


def tokenize_pairs(ds, source_tokenizer, target_tokenizer, max_source_length, max_target_length):
    """Maps {"source", "target"} strings to {"source": ids, "target": ids, "*_truncated": bool}."""

    def encode(example):
        src = source_tokenizer.tokenize(tf.strings.strip(example["source"]))
        tgt = target_tokenizer.tokenize(tf.strings.strip(example["target"]))
        return {
            "source": src[:max_source_length],
            "target": tgt[:max_target_length],
            "source_truncated": tf.size(src) > max_source_length,
            "target_truncated": tf.size(tgt) > max_target_length,
        }

    return ds.map(encode, num_parallel_calls=AUTOTUNE, deterministic=True)


def is_nonempty(example):
    return tf.logical_and(tf.size(example["source"]) > 0, tf.size(example["target"]) > 0)


def pair_statistics(tokenized):
    """Counts pairs, dropped empties, truncations and real tokens of a tokenized dataset."""
    keys = (
        "pairs",
        "empty",
        "source_truncated",
        "target_truncated",
        "source_tokens",
        "target_tokens",
    )
    initial = {k: tf.constant(0, tf.int64) for k in keys}

    def add(acc, ex):
        keep = tf.cast(is_nonempty(ex), tf.int64)
        return {
            "pairs": acc["pairs"] + 1,
            "empty": acc["empty"] + 1 - keep,
            "source_truncated": acc["source_truncated"] + tf.cast(ex["source_truncated"], tf.int64),
            "target_truncated": acc["target_truncated"] + tf.cast(ex["target_truncated"], tf.int64),
            "source_tokens": acc["source_tokens"] + keep * tf.size(ex["source"], tf.int64),
            # +1 for the EOS every target gets
            "target_tokens": acc["target_tokens"] + keep * (tf.size(ex["target"], tf.int64) + 1),
        }

    return {k: int(v) for k, v in tokenized.reduce(initial, add).items()}


def to_model_inputs(example):
    """One tokenized pair -> (inputs dict, labels) with BOS/EOS added to the target."""
    target = example["target"]
    bos = tf.fill([1], tf.constant(BOS_ID, target.dtype))
    eos = tf.fill([1], tf.constant(EOS_ID, target.dtype))
    inputs = {
        "encoder_token_ids": example["source"],
        "decoder_token_ids": tf.concat([bos, target], 0),
    }
    return inputs, tf.concat([target, eos], 0)


def bucket_boundaries(max_length, smallest=8, growth=1.3):
    """Length boundaries growing geometrically, so padding stays under ~30% of a batch."""
    bounds, b = [], smallest
    while b < max_length:
        bounds.append(b)
        b = max(b + 1, int(b * growth))
    return bounds + [max_length + 1]


def bucket_batch_sizes(boundaries, batch_tokens, batch_sentences, num_replicas):
    """Sentences per bucket: a fixed count, or as many as fit the token budget.

    Every size is a multiple of the replica count: Keras 3 fails on a first global batch that
    does not split evenly across replicas.
    """

    def round_to_replicas(n):
        return max(num_replicas, n // num_replicas * num_replicas)

    if batch_sentences:
        return [round_to_replicas(batch_sentences)] * (len(boundaries) + 1)
    sizes = [round_to_replicas(batch_tokens // b) for b in boundaries]
    return sizes + [sizes[-1]]


def make_batches(
    tokenized,
    *,
    batch_tokens,
    batch_sentences,
    max_length,
    training,
    shuffle_buffer=20000,
    num_replicas=1,
    seed=None,
):
    """Drops empty pairs, shuffles (training), buckets by length and pads on the right."""
    ds = tokenized.filter(is_nonempty)
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(to_model_inputs, num_parallel_calls=AUTOTUNE, deterministic=True)
    boundaries = bucket_boundaries(max_length + 1)
    sizes = bucket_batch_sizes(boundaries, batch_tokens, batch_sentences, num_replicas)
    ds = ds.bucket_by_sequence_length(
        lambda x, y: tf.maximum(tf.shape(x["encoder_token_ids"])[0], tf.shape(y)[0]),
        boundaries,
        sizes,
        drop_remainder=False,
    )
    if training:
        ds = ds.shuffle(64, seed=seed, reshuffle_each_iteration=True)
    return ds.prefetch(AUTOTUNE)
