import numpy as np
import tensorflow as tf

from seq2seq import pipeline, tokenizers

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
        tokenized, batch_tokens=200, batch_sentences=None, max_length=51, training=False
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
        pipeline.make_batches(
            tokenized, batch_tokens=100, batch_sentences=None, max_length=13, training=False
        )
    )
    rows = sum(int(x["encoder_token_ids"].shape[0]) for x, _ in batches)
    assert rows == 2
    assert max(int(x["encoder_token_ids"].shape[1]) for x, _ in batches) <= 12


def test_bucket_batch_sizes_follow_token_budget_and_replicas():
    bounds = pipeline.bucket_boundaries(100)
    assert bounds == sorted(bounds) and bounds[-1] == 101
    sizes = pipeline.bucket_batch_sizes(bounds, 1000, None, num_replicas=2)
    assert len(sizes) == len(bounds) + 1
    assert all(s % 2 == 0 for s in sizes)
    assert all(s * b <= 1000 or s == 2 for s, b in zip(sizes, bounds))
    assert pipeline.bucket_batch_sizes(bounds, 1000, 64, num_replicas=1) == [64] * len(sizes)
