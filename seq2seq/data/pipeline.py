"""tf.data input pipeline: strings -> subword ids -> length-bucketed, right-padded batches.

The data contract: inputs `{"encoder_token_ids": [B, S], "decoder_token_ids": [B, T]}` and
labels `[B, T]` (the decoder ids shifted left by one, ending in EOS), all int32, padded with 0 on
the right (cuDNN needs right padding). Pairs with an empty source or target are dropped, since a
fully masked row breaks the cuDNN kernel.
"""

import functools
import logging

import tensorflow as tf

from seq2seq.data.filters import REASONS, PairFilter
from seq2seq.data.subword_sampling import sampled_pairs
from seq2seq.data.tokenizers import BOS_ID, EOS_ID

log = logging.getLogger(__name__)

AUTOTUNE = tf.data.AUTOTUNE
EMPTY_PAIRS_ONLY = PairFilter()  # what every split drops


def _without_autotuning(dataset):
    """Switches off tf.data's autotuning thread. Keras opens an epoch's iterator before the
    previous one is done with, and destroying an iterator waits out that thread's sleep, which
    doubles up to a minute: training stalled at every other epoch start (TF 2.21). Parallel
    maps then use every core, as autotuning settled on anyway."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def tokenize_pairs(ds, source_tokenizer, target_tokenizer, max_source_length, max_target_length):
    """Maps {"source", "target"} strings to {"source": ids, "target": ids, "*_truncated": bool,
    "*_length": pieces before truncation}."""

    def encode(example):
        src = source_tokenizer.tokenize(tf.strings.strip(example["source"]))
        tgt = target_tokenizer.tokenize(tf.strings.strip(example["target"]))
        return {
            "source": src[:max_source_length],
            "target": tgt[:max_target_length],
            "source_truncated": tf.size(src) > max_source_length,
            "target_truncated": tf.size(tgt) > max_target_length,
            "source_length": tf.size(src),
            "target_length": tf.size(tgt),
        }

    return ds.map(encode, num_parallel_calls=AUTOTUNE, deterministic=True)


def is_nonempty(example):
    return tf.logical_and(tf.size(example["source"]) > 0, tf.size(example["target"]) > 0)


def pair_statistics(tokenized, pair_filter=EMPTY_PAIRS_ONLY):
    """Counts pairs, those `pair_filter` drops (by reason: `filters.REASONS`), truncations
    and the real tokens of the kept pairs of a tokenized dataset."""
    keys = ("pairs", *REASONS, "source_truncated", "target_truncated")
    initial = {k: tf.constant(0, tf.int64) for k in (*keys, "source_tokens", "target_tokens")}

    def add(acc, ex):
        dropped = pair_filter.reasons(ex)
        keep = 1 - tf.add_n([tf.cast(d, tf.int64) for d in dropped.values()])
        counts = {
            "pairs": tf.constant(1, tf.int64),
            **{reason: tf.cast(d, tf.int64) for reason, d in dropped.items()},
            "source_truncated": keep * tf.cast(ex["source_truncated"], tf.int64),
            "target_truncated": keep * tf.cast(ex["target_truncated"], tf.int64),
            "source_tokens": keep * tf.size(ex["source"], tf.int64),
            # +1 for the EOS every target gets
            "target_tokens": keep * (tf.size(ex["target"], tf.int64) + 1),
        }
        return {k: acc[k] + counts[k] for k in acc}

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


class DataPosition:
    """Where the training batches stand: which epoch they are drawn for, and how many of that
    epoch's batches to skip (a run resumed mid-epoch). Both are variables, read when an
    epoch's iteration starts, so one dataset serves every epoch of `model.fit`."""

    def __init__(self):
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="data_epoch")
        self.skip = tf.Variable(0, dtype=tf.int64, trainable=False, name="data_skip")

    def set(self, epoch, skip=0):
        self.epoch.assign(epoch)
        self.skip.assign(skip)


def epoch_batches(tokenized, position, *, seed, pair_filter=EMPTY_PAIRS_ONLY, **batching):
    """The training batches of epoch `position.epoch` without its first `position.skip`.

    Their order, and their segmentations when sampled, depend only on `seed` and the epoch
    number (not on how many times the data was iterated before), so a resumed run sees exactly
    the batches an uninterrupted one does.

    Args:
        tokenized: the tokenized training pairs, or a function of the int64 vector (seed,
            epoch) giving them (sampled segmentations).
        pair_filter: which pairs are trained on (`filters.PairFilter`).
        batching: the arguments of `make_batches`.
    """
    base = tf.constant(seed or 0, tf.int64) * 1_000_003

    def one_epoch(_):
        pairs = tokenized
        if callable(tokenized):
            pairs = tokenized(tf.stack([tf.constant(seed or 0, tf.int64), position.epoch]))
        pairs = pairs.filter(pair_filter.keep)
        batches = make_batches(pairs, training=True, seed=base + position.epoch, **batching)
        return batches.skip(position.skip)

    return _without_autotuning(tf.data.Dataset.from_tensors(0).flat_map(one_epoch))


def make_batches(
    tokenized,
    *,
    batch_tokens,
    batch_sentences,
    training,
    shuffle_buffer=20000,
    pool_size=32768,
    num_replicas=1,
    seed=None,
    pad_to_multiple=1,
):
    """Drops empty pairs, shuffles (training), batches pairs of similar lengths, pads right.

    Batching is OpenNMT's: `pool_size` pairs are sorted by (target length, source length) and
    cut into batches of `batch_sentences` pairs, or into batches of about `batch_tokens`
    tokens of their longer side; with training, the batches are shuffled. Sorted neighbours
    have nearly equal lengths, so batches carry far less padding than length buckets do
    (docs/performance.md). Sizes are multiples of
    `num_replicas` except for the last batch of a pool. Each batch's time axes are padded to
    a multiple of `pad_to_multiple`: with fewer distinct shapes, TensorFlow's oneDNN kernels
    cache fewer primitives (one per shape, up to 1,024 per kind and thread), so memory grows
    less with training time, for some padding.
    """
    if pad_to_multiple < 1:
        raise ValueError(f"data.pad_to_multiple={pad_to_multiple} must be at least 1")
    ds = tokenized.filter(is_nonempty)
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(to_model_inputs, num_parallel_calls=AUTOTUNE, deterministic=True)
    cut = functools.partial(
        _cut_pool,
        batch_tokens=batch_tokens,
        batch_sentences=batch_sentences,
        num_replicas=num_replicas,
    )
    ds = ds.ragged_batch(pool_size).flat_map(cut)
    if training:
        batches_per_pool = pool_size // (batch_sentences or max(batch_tokens // 32, 1))
        ds = ds.shuffle(max(batches_per_pool, 16), seed=seed, reshuffle_each_iteration=True)
    pad = functools.partial(_pad, multiple=pad_to_multiple)
    ds = ds.map(pad, num_parallel_calls=AUTOTUNE, deterministic=True).prefetch(AUTOTUNE)
    return _without_autotuning(ds)


def _cut_pool(inputs, labels, *, batch_tokens, batch_sentences, num_replicas):
    """A ragged pool of pairs -> a dataset of its length-sorted ragged batches."""
    source_lengths = inputs["encoder_token_ids"].row_lengths()
    target_lengths = labels.row_lengths()
    order = tf.argsort(
        target_lengths * (tf.reduce_max(source_lengths) + 1) + source_lengths, stable=True
    )
    inputs = {k: tf.gather(v, order) for k, v in inputs.items()}
    labels = tf.gather(labels, order)
    longer = tf.gather(tf.maximum(source_lengths, target_lengths), order)
    batch_ids = _batch_ids(longer, batch_tokens, batch_sentences, num_replicas)
    nest = lambda t: tf.RaggedTensor.from_value_rowids(t, batch_ids)  # noqa: E731
    return tf.data.Dataset.from_tensor_slices(
        ({k: nest(v) for k, v in inputs.items()}, nest(labels))
    )


def _batch_ids(lengths, batch_tokens, batch_sentences, num_replicas):
    """The batch of each sorted pair: consecutive groups of `num_replicas` pairs, cut every
    `batch_sentences` pairs, or greedily so that pairs x longest length <= `batch_tokens`
    (a group longer than the budget makes a batch alone)."""
    groups = tf.range(tf.size(lengths, tf.int64)) // num_replicas
    if batch_sentences:
        return groups // max(batch_sentences // num_replicas, 1)
    group_lengths = tf.math.segment_max(lengths, groups)

    def add(state, length):
        batch, count, longest = state[0], state[1] + num_replicas, tf.maximum(state[2], length)
        full = tf.logical_and(count * longest > batch_tokens, state[1] > 0)
        return tf.where(
            full, tf.stack([batch + 1, num_replicas, length]), tf.stack([batch, count, longest])
        )

    start = tf.constant([0, 0, 0], tf.int64)
    group_batch = tf.scan(add, group_lengths, initializer=start)[:, 0]
    return tf.gather(group_batch, groups)


def _pad(inputs, labels, multiple=1):
    def dense(ragged):
        tensor = ragged.to_tensor(0)
        if multiple == 1:
            return tensor
        return tf.pad(tensor, [[0, 0], [0, -tf.shape(tensor)[1] % multiple]])

    return {k: dense(v) for k, v in inputs.items()}, dense(labels)


def make_datasets(
    splits,
    source_tokenizer,
    target_tokenizer,
    *,
    max_source_length,
    max_target_length,
    batch_tokens,
    batch_sentences,
    shuffle_buffer,
    seed,
    pool_size=32768,
    num_replicas=1,
    pad_to_multiple=1,
    pair_filter=EMPTY_PAIRS_ONLY,
    samplers=None,
):
    """Length-sorted training and validation batches, training statistics, and the
    `DataPosition` that `fit` moves through the epochs.

    `pair_filter` chooses the training pairs (`filters.PairFilter`); `samplers`, (source,
    target) `subword_sampling.SubwordSampler`s, segment the training text anew every epoch (the
    statistics count its best segmentation).
    """
    lengths = dict(max_source_length=max_source_length, max_target_length=max_target_length)
    batching = dict(
        batch_tokens=batch_tokens,
        batch_sentences=batch_sentences,
        pool_size=pool_size,
        num_replicas=num_replicas,
        pad_to_multiple=pad_to_multiple,
    )
    tokenized = {
        name: tokenize_pairs(splits[name], source_tokenizer, target_tokenizer, **lengths)
        for name in ("train", "validation")
    }
    log.info("tokenizing and counting the training pairs")
    stats = pair_statistics(tokenized["train"], pair_filter)
    _log_statistics(stats)
    if stats["pairs"] == sum(stats[reason] for reason in REASONS):
        raise ValueError(
            "the training set is empty after dropping empty source/target lines (and pairs too "
            f"long or too lopsided, if asked): {stats}"
        )
    # The dev set is small: cached. Built first, eagerly, so that a bad batching setting fails
    # with its own message rather than wrapped in the training pipeline's traced function.
    validation = make_batches(tokenized["validation"].cache(), training=False, **batching)
    position = DataPosition()
    # The training pairs are streamed and tokenized again every epoch (a small part of an
    # epoch's time): memory stays flat however large the corpus.
    train_pairs = tokenized["train"]
    if samplers:

        def train_pairs(seeds):
            return sampled_pairs(splits["train"], samplers, seeds=seeds, **lengths)

    train = epoch_batches(
        train_pairs,
        position,
        seed=seed,
        shuffle_buffer=shuffle_buffer,
        pair_filter=pair_filter,
        **batching,
    )
    return train, validation, stats, position


def _log_statistics(stats):
    log.info(
        "training pairs: %d read; dropped: %d empty, %d too long, %d with a length ratio "
        "too large; %d sources and %d targets truncated; "
        "%d source and %d target tokens a epoch",
        stats["pairs"],
        stats["empty"],
        stats["too_long"],
        stats["length_ratio"],
        stats["source_truncated"],
        stats["target_truncated"],
        stats["source_tokens"],
        stats["target_tokens"],
    )


def count_batches(dataset):
    return int(dataset.reduce(0, lambda count, _: count + 1))
