"""Decoding constraints, forced decoding and sampling on the toy step functions of
test_decoding: n-gram blocking, min_length, a forced prefix, scores of given hypotheses, and
samples that follow the model's distribution."""

import numpy as np
import pytest
import tensorflow as tf

from seq2seq.inference import sampling
from seq2seq.inference.constraints import Prefix, banned_by_ngrams
from seq2seq.inference.forced import forced_decode
from seq2seq.inference.greedy import greedy_search
from seq2seq.inference.search import Settings, length_penalty
from tests.test_decoding import (
    BOS,
    EOS,
    TableModel,
    ToyRNN,
    dummy_memory,
    make_memory,
    run_beam,
    run_greedy,
    slice_memory,
)


def hypotheses(ids):
    """Each hypothesis of `(..., L)` ids as a list, up to and without EOS."""
    flat = ids.reshape(-1, ids.shape[-1]).tolist()
    return [row[: row.index(EOS)] if EOS in row else row for row in flat]


def repeats_an_ngram(tokens, n):
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(grams) != len(set(grams))


def prefix_of(rows):
    width = max(len(r) for r in rows)
    ids = [r + [0] * (width - len(r)) for r in rows]
    return Prefix(tf.constant(ids, tf.int32), tf.constant([len(r) for r in rows], tf.int32))


# A model that repeats itself: its EOS is unlikely, so hypotheses run to their max length.
REPEATING = dict(seed=2, eos_bias=-4.0)


def test_banned_by_ngrams_bans_what_would_complete_a_seen_ngram():
    seq = tf.constant([[5, 6, 5, 0, 0], [5, 6, 7, 5, 6]])
    bigrams = banned_by_ngrams(seq, 3, 2, 8).numpy()  # after "5 6 5": 6 would repeat "5 6"
    assert np.flatnonzero(bigrams[0]).tolist() == [6]
    assert np.flatnonzero(bigrams[1]).tolist() == []  # after "5 6 7": no bigram starts with 7
    trigrams = banned_by_ngrams(seq, 5, 3, 8).numpy()  # after "... 5 6": "5 6 7" seen -> 7
    assert np.flatnonzero(trigrams[1]).tolist() == [7]
    unigrams = banned_by_ngrams(seq, 2, 1, 8).numpy()
    assert np.flatnonzero(unigrams[0]).tolist() == [5, 6]


@pytest.mark.parametrize("n", [1, 2, 3])
def test_no_repeat_ngram_size_holds_in_beam_and_greedy(n):
    model, memory = ToyRNN(**REPEATING), make_memory([3, 5, 2, 4])
    max_lengths = [10, 12, 9, 11]
    plain = hypotheses(run_greedy(model, memory, max_lengths)[0])
    assert any(repeats_an_ngram(h, n) for h in plain)  # so that the test can fail
    greedy = hypotheses(run_greedy(model, memory, max_lengths, no_repeat_ngram_size=n)[0])
    beam = run_beam(model, memory, max_lengths, n_best=3, no_repeat_ngram_size=n)
    for tokens in greedy + hypotheses(beam[0][np.isfinite(beam[1])]):
        assert not repeats_an_ngram(tokens, n)


def test_min_length_as_a_tensor_holds_in_beam_and_greedy():
    model, memory = ToyRNN(seed=0, eos_bias=3.0), make_memory([3, 5, 2])
    min_length = tf.constant(4)
    greedy, _ = run_greedy(model, memory, [8, 8, 8], min_length=min_length)
    beam, _ = run_beam(model, memory, [8, 8, 8], n_best=4, min_length=min_length)
    assert (run_greedy(model, memory, [8, 8, 8])[0][:, :4] == EOS).any()  # it can fail
    assert not (greedy[:, :4] == EOS).any() and not (beam[..., :4] == EOS).any()


@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_a_forced_prefix_is_kept_and_decoding_stays_batch_invariant(search):
    model, lengths = ToyRNN(seed=4), [3, 5, 2]
    memory, max_lengths = make_memory(lengths), [7, 8, 6]
    rows = [[5, 5, 4], [], [6]]
    run = run_greedy if search == "greedy" else run_beam
    ids = run(model, memory, max_lengths, prefix=prefix_of(rows))[0]
    ids = ids if search == "greedy" else ids[:, 0]
    for i, row in enumerate(rows):
        assert ids[i, : len(row)].tolist() == row
        alone = run(
            model, slice_memory(memory, i, lengths[i]), [max_lengths[i]], prefix=prefix_of([row])
        )[0]
        alone = alone if search == "greedy" else alone[:, 0]
        np.testing.assert_array_equal(alone[0], ids[i, : alone.shape[1]])


def forced_scores(model, memory, ids, alpha):
    """Scores of the hypotheses `ids` `(B, L)` by forced decoding."""
    lengths = tf.constant([h.index(EOS) + 1 for h in ids.tolist()], tf.int32)
    out = forced_decode(
        model.step,
        model.initial_state(memory),
        memory,
        tf.constant(ids),
        lengths,
        Settings(BOS, EOS),
    )
    logp = tf.reduce_sum(out.token_log_probs, axis=1)
    return (logp / length_penalty(lengths, alpha)).numpy()


@pytest.mark.parametrize("prefix", [None, [[5, 4], [6], [3, 3, 3]]])
def test_forced_decoding_scores_beam_hypotheses_as_the_beam_did(prefix):
    model, memory, max_lengths = ToyRNN(seed=7), make_memory([3, 5, 2]), [7, 8, 6]
    prefix = None if prefix is None else prefix_of(prefix)
    ids, scores = run_beam(model, memory, max_lengths, n_best=1, prefix=prefix)
    assert all(EOS in row for row in ids[:, 0].tolist())
    np.testing.assert_allclose(
        forced_scores(model, memory, ids[:, 0], 0.6), scores[:, 0], rtol=1e-5
    )


# === Sampling ===

FIRST = np.array([0.0, 0.0, 0.1, 0.2, 0.3, 0.4, 0.0])  # PAD, BOS, EOS, then tokens 3-6
SAMPLES = 4000
CHI_SQUARE_999 = {1: 10.83, 2: 13.82, 3: 16.27}  # 99.9% quantiles: a fixed draw fails 1 in 1000


def first_tokens(temperature, top_k, top_p, keys=None):
    """The first sampled token of `SAMPLES` sentences of `TableModel` (one step: EOS after)."""
    model = TableModel([FIRST, [0, 0, 1, 0, 0, 0, 0]])
    keys = tf.range(SAMPLES, dtype=tf.int64) if keys is None else keys
    memory = dummy_memory(int(keys.shape[0]))
    ids, _ = greedy_search(
        model.step,
        model.initial_state(memory),
        memory,
        bos_id=BOS,
        eos_id=EOS,
        max_lengths=tf.fill([int(keys.shape[0])], 2),
        choose=sampling.sampler(tf.constant(temperature), tf.constant(top_k), tf.constant(top_p)),
        per_sentence={"sample_keys": keys},
    )
    return ids.numpy()[:, 0]


def chi_square(tokens, expected):
    support = expected > 0
    counts = np.bincount(tokens, minlength=len(expected))
    assert counts[~support].sum() == 0  # tokens of probability 0 never come
    want = expected[support] / expected[support].sum() * len(tokens)
    return ((counts[support] - want) ** 2 / want).sum(), support.sum() - 1


@pytest.mark.parametrize(
    "temperature, top_k, top_p, expected",
    [
        (1.0, 0, 1.0, FIRST),
        (2.0, 0, 1.0, np.sqrt(FIRST)),
        (1.0, 2, 1.0, np.where(FIRST >= 0.3, FIRST, 0)),
        (1.0, 0, 0.5, np.where(FIRST >= 0.3, FIRST, 0)),  # 0.4 + 0.3 reach 0.5
        (0.5, 3, 0.95, np.where(FIRST >= 0.2, FIRST**2, 0)),
    ],
)
def test_sampled_tokens_follow_the_models_distribution(temperature, top_k, top_p, expected):
    statistic, df = chi_square(first_tokens(temperature, top_k, top_p), expected)
    assert statistic < CHI_SQUARE_999[df]


def test_the_check_catches_a_wrong_distribution():
    statistic, df = chi_square(first_tokens(1.0, 0, 1.0), np.sqrt(FIRST))
    assert statistic > CHI_SQUARE_999[df]


def test_temperature_zero_is_greedy():
    assert (first_tokens(0.0, 0, 1.0) == np.argmax(FIRST)).all()


def test_a_sentence_samples_the_same_whatever_its_batch():
    keys = sampling.sentence_keys(tf.constant(["a", "b b", "a", "c"]), 7)
    together = first_tokens(1.0, 0, 1.0, keys)
    reversed_ = first_tokens(1.0, 0, 1.0, tf.reverse(keys, [0]))[::-1]
    alone = [first_tokens(1.0, 0, 1.0, keys[i : i + 1])[0] for i in range(4)]
    np.testing.assert_array_equal(together, reversed_)
    np.testing.assert_array_equal(together, alone)
    assert keys[0] == keys[2] and keys[0] != sampling.sentence_keys(tf.constant(["a"]), 8)[0]


def test_a_draw_at_the_top_of_the_range_takes_the_last_possible_token():
    probs = tf.constant([[0.0, 0.5, 0.5, 0.0], [0.2, 0.0, 0.8, 0.0]])
    top = tf.constant([1.0, 1.0], tf.float64)  # beyond any uniform number: rounding's worst case
    assert sampling.draw(probs, top).numpy().tolist() == [2, 2]
    low = tf.constant([0.0, 0.0], tf.float64)
    assert sampling.draw(probs, low).numpy().tolist() == [1, 0]


# === Word alignments from piece attention ===


def test_pieces_merge_into_words_and_each_target_word_gets_its_best_source_word():
    from seq2seq.inference import alignment

    source = tf.constant([["\u2581drei", "hundert", "\u2581und", "\u2581eins"]])
    target = tf.constant([["\u2581one", "\u2581hundred", "\u2581and", "\u2581th", "ree", "</s>"]])
    source_words, target_words = tf.constant([3]), tf.constant([4])
    source_index = alignment.word_indices(source, source_words)
    target_index = alignment.word_indices(target, target_words)
    assert source_index.numpy().tolist() == [[0, 0, 1, 2]]
    assert target_index.numpy().tolist() == [[0, 1, 2, 3, 3, 3]]  # EOS: clipped, not counted
    weights = np.zeros([1, 6, 4], np.float32)
    for t, s in [(0, 3), (1, 1), (2, 2), (3, 0), (4, 1), (5, 2)]:  # "three" split 0.5 / 0.5
        weights[0, t, s] = 1.0
    real_source = tf.constant([[True] * 4])
    real_target = tf.constant([[True] * 5 + [False]])
    words = alignment.word_attention(
        tf.constant(weights), (source_index, real_source), (target_index, real_target)
    )
    assert words.shape == (1, 4, 4)  # padded to the longer side; masked by the word counts
    pairs = alignment.pharaoh(words, source_words, target_words).numpy()[0].decode()
    assert pairs == "2-0 0-1 1-2 0-3"
