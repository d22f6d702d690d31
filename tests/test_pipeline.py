import numpy as np
import pytest
import tensorflow as tf

from seq2seq.data import pipeline, tokenizers
from seq2seq.data.filters import PairFilter

LINES = ["ein kleines Haus", "zwei große Hunde laufen schnell über die Wiese", "der Mann"] * 20


def _tokenized(tmp_path, sources, targets, max_len=5):
    pairs = list(zip(LINES, LINES))
    paths = tokenizers.train_tokenizers(
        pairs, tmp_path, vocab_size=40, model_type="unigram", joint=True
    )
    tok = tokenizers.load_tokenizer(paths[0])
    ds = tf.data.Dataset.from_tensor_slices({"source": sources, "target": targets})
    return pipeline.tokenize_pairs(ds, tok, tok, max_len, max_len)


def test_batches_are_right_padded_with_bos_eos_and_shifted_labels(tmp_path):
    tokenized = _tokenized(tmp_path, LINES[:3], LINES[:3], max_len=50)
    batches = pipeline.make_batches(
        tokenized, batch_tokens=200, batch_sentences=None, training=False
    )
    for inputs, labels in batches:
        src = inputs["encoder_token_ids"].numpy()
        dec = inputs["decoder_token_ids"].numpy()
        labels = labels.numpy()
        assert dec.shape == labels.shape
        assert (dec[:, 0] == tokenizers.BOS_ID).all()
        for row_src, row_dec, row_lab in zip(src, dec, labels):
            for row in (row_src, row_dec, row_lab):
                n = int((row != 0).sum())
                assert n > 0 and (row[:n] != 0).all() and (row[n:] == 0).all()  # right padded
            n = int((row_lab != 0).sum())
            assert row_lab[n - 1] == tokenizers.EOS_ID
            np.testing.assert_array_equal(row_lab[: n - 1], row_dec[1:n])


def test_empty_pairs_are_dropped_and_counted_and_long_ones_truncated(tmp_path):
    sources = ["der Mann", "   ", "zwei große Hunde laufen schnell über die Wiese " * 3]
    targets = ["der Mann", "der Mann", "der Mann"]
    tokenized = _tokenized(tmp_path, sources, targets, max_len=12).cache()
    stats = pipeline.pair_statistics(tokenized)
    assert stats["pairs"] == 3 and stats["empty"] == 1 and stats["source_truncated"] == 1
    batches = list(
        pipeline.make_batches(tokenized, batch_tokens=100, batch_sentences=None, training=False)
    )
    rows = sum(int(x["encoder_token_ids"].shape[0]) for x, _ in batches)
    assert rows == 2
    assert max(int(x["encoder_token_ids"].shape[1]) for x, _ in batches) <= 12


def _lengths_dataset(lengths):
    """Pairs whose source and target ids are 5s of the given lengths."""

    def pair(n):
        ids = tf.fill([n], 5)
        return {"source": ids, "target": ids[: tf.maximum(n - 1, 1)]}

    return tf.data.Dataset.from_tensor_slices(lengths).map(pair)


def _batches(lengths, **kwargs):
    args = dict(batch_tokens=None, batch_sentences=None, training=True, seed=0, pool_size=256)
    batches = pipeline.make_batches(_lengths_dataset(lengths), **{**args, **kwargs})
    return [(x["encoder_token_ids"].numpy(), y.numpy()) for x, y in batches]


def test_sorted_pools_keep_padding_small_and_every_pair_once():
    lengths = np.random.default_rng(0).integers(1, 60, 1000).astype("int32")
    batches = _batches(lengths, batch_sentences=16)
    real = sum(int((s != 0).sum()) for s, _ in batches)
    padded = sum(s.size for s, _ in batches)
    assert real == lengths.sum()  # every pair exactly once
    assert real / padded > 0.9
    sizes = [len(s) for s, _ in batches]
    assert sizes.count(16) >= len(sizes) - 4  # only a pool's last batch is smaller
    assert sorted(len(s[0]) for s, _ in batches[:8]) != [len(s[0]) for s, _ in batches[:8]]


def test_token_budget_and_replica_multiples():
    lengths = np.random.default_rng(1).integers(1, 60, 1000).astype("int32")
    batches = _batches(lengths, batch_tokens=400, num_replicas=2)
    for src, labels in batches[:-4]:
        longer = max(src.shape[1], labels.shape[1])
        assert len(src) % 2 == 0
        assert len(src) * longer <= 400
    assert sum(len(s) for s, _ in batches) == 1000
    long_one = _batches(np.array([300, 3, 3], "int32"), batch_tokens=100)
    assert sorted(len(s) for s, _ in long_one) == [1, 2]  # longer than the budget: alone


def test_order_is_reproducible_with_a_seed():
    lengths = np.random.default_rng(2).integers(1, 30, 300).astype("int32")
    first, second = _batches(lengths, batch_sentences=8), _batches(lengths, batch_sentences=8)
    assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(first, second))


def test_pad_to_multiple_rounds_lengths_up_and_keeps_the_batches():
    lengths = np.random.default_rng(3).integers(1, 40, 300).astype("int32")
    plain = _batches(lengths, batch_sentences=8)
    rounded = _batches(lengths, batch_sentences=8, pad_to_multiple=8)
    assert len(plain) == len(rounded)
    for (src, labels), (src8, labels8) in zip(plain, rounded):
        for x, x8 in ((src, src8), (labels, labels8)):
            assert x8.shape[1] % 8 == 0 and x.shape[1] <= x8.shape[1] < x.shape[1] + 8
            np.testing.assert_array_equal(x8[:, : x.shape[1]], x)
            assert not x8[:, x.shape[1] :].any()
    assert len({s.shape[1] for s, _ in rounded}) < len({s.shape[1] for s, _ in plain})


def test_pad_to_multiple_below_one_is_refused_by_name():
    with pytest.raises(ValueError, match="data.pad_to_multiple=0"):
        _batches(np.array([3, 4], "int32"), batch_sentences=2, pad_to_multiple=0)


def test_long_and_lopsided_training_pairs_are_dropped_and_counted(tmp_path):
    long_source = "zwei große Hunde laufen schnell über die Wiese " * 3
    sources = ["der Mann", "   ", long_source, "ein", "ein kleines Haus"]
    targets = ["der Mann", "der Mann", "der Mann", "ein kleines Haus", "ein kleines Haus"]
    tokenized = _tokenized(tmp_path, sources, targets, max_len=12).cache()
    lengths = [(int(x["source_length"]), int(x["target_length"])) for x in tokenized]
    ratio = lengths[3][1] / lengths[3][0]
    assert ratio > 2.5 and lengths[3][1] <= 12  # pair 3: lopsided but within the limits
    pair_filter = PairFilter(drop_long=True, max_length_ratio=2.5)
    stats = pipeline.pair_statistics(tokenized, pair_filter)
    counts = [stats[k] for k in ("pairs", "empty", "too_long", "length_ratio")]
    assert counts == [5, 1, 1, 1]
    assert stats["source_truncated"] == 0  # the long pair is dropped, not truncated
    kept = [x for x in tokenized if pair_filter.keep(x)]
    assert [int(x["source_length"]) for x in kept] == [lengths[0][0], lengths[4][0]]
    truncating = pipeline.pair_statistics(tokenized)
    assert truncating["too_long"] == truncating["length_ratio"] == 0
    assert truncating["source_truncated"] == 1
