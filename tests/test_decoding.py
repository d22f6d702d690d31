"""Greedy and beam search (seq2seq.inference) on tiny deterministic toy step functions."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from seq2seq.inference import top_k
from seq2seq.inference.beam import beam_search
from seq2seq.inference.greedy import greedy_search

PAD, BOS, EOS = 0, 1, 2
VOCAB = 7  # PAD, BOS, EOS and 4 content tokens
CONTENT = list(range(3, VOCAB))
HIDDEN = 8


# === Toy models ===


class ToyRNN:
    """Random-weight RNN with dot-product attention over a padded, masked memory."""

    def __init__(self, seed=0, vocab=VOCAB, hidden=HIDDEN, eos_bias=1.0):
        rng = np.random.default_rng(seed)

        def weight(*shape, scale=1.0):
            return tf.constant(rng.normal(scale=scale, size=shape), tf.float32)

        self.embed = weight(vocab, hidden)
        self.w_h = weight(hidden, hidden, scale=0.5)
        self.w_c = weight(hidden, hidden, scale=0.5)
        self.w_out = weight(hidden, vocab, scale=1.5)
        self.b_out = tf.one_hot(EOS, vocab) * eos_bias

    def initial_state(self, memory):
        mask = tf.cast(memory["mask"], tf.float32)[:, :, None]
        mean = tf.reduce_sum(memory["enc"] * mask, 1) / tf.reduce_sum(mask, 1)
        return {"h": tf.tanh(mean)}

    def step(self, tokens, state, memory):
        # Rows come grouped by sentence (the K beams of sentence b share memory row b).
        h = state["h"]
        batch, rows = tf.shape(memory["enc"])[0], tf.shape(h)[0]
        grouped = tf.reshape(h, [batch, rows // batch, -1])  # (B, K, H)
        att = tf.einsum("bsh,bkh->bks", memory["enc"], grouped)
        att = tf.where(memory["mask"][:, None, :], att, float("-inf"))
        ctx = tf.einsum("bks,bsh->bkh", tf.nn.softmax(att, axis=-1), memory["enc"])
        ctx = tf.reshape(ctx, tf.shape(h))
        h = tf.tanh(tf.gather(self.embed, tokens) + h @ self.w_h + ctx @ self.w_c)
        return h @ self.w_out + self.b_out, {"h": h}


class TableModel:
    """Rigged model: the next-token distribution depends only on the step index."""

    def __init__(self, probs):
        probs = np.asarray(probs, np.float64)
        self.log_probs = tf.constant(np.log(np.maximum(probs, 1e-30)), tf.float32)

    def initial_state(self, memory):
        return {"t": tf.zeros_like(memory["dummy"], tf.int32)}

    def step(self, tokens, state, memory):
        del tokens, memory
        t = tf.minimum(state["t"], self.log_probs.shape[0] - 1)
        return tf.gather(self.log_probs, t), {"t": state["t"] + 1}


def make_memory(lengths, seed=1):
    """Random encoder outputs of the given lengths, zero-padded, with a boolean mask."""
    rng = np.random.default_rng(seed)
    enc = np.zeros([len(lengths), max(lengths), HIDDEN], np.float32)
    for i, n in enumerate(lengths):
        enc[i, :n] = rng.normal(size=(n, HIDDEN))
    mask = np.arange(max(lengths))[None, :] < np.asarray(lengths)[:, None]
    return {"enc": tf.constant(enc), "mask": tf.constant(mask)}


def dummy_memory(batch):
    """Memory for `TableModel`, which ignores it."""
    return {"dummy": tf.zeros([batch], tf.int32)}


def slice_memory(memory, i, length):
    """Sentence `i` of `memory`, without padding."""
    return {"enc": memory["enc"][i : i + 1, :length], "mask": memory["mask"][i : i + 1, :length]}


def run_beam(model, memory, max_lengths, **kwargs):
    kwargs = {"beam_size": 4, "alpha": 0.6, "bos_id": BOS, "eos_id": EOS, **kwargs}
    max_lengths = tf.constant(max_lengths, tf.int32)
    ids, scores = beam_search(
        model.step, model.initial_state(memory), memory, max_lengths=max_lengths, **kwargs
    )
    return ids.numpy(), scores.numpy()


def run_greedy(model, memory, max_lengths, **kwargs):
    max_lengths = tf.constant(max_lengths, tf.int32)
    ids, scores = greedy_search(
        model.step,
        model.initial_state(memory),
        memory,
        bos_id=BOS,
        eos_id=EOS,
        max_lengths=max_lengths,
        **kwargs,
    )
    return ids.numpy(), scores.numpy()


# === Reference scoring ===


def masked_log_probs(logits):
    logits = np.asarray(logits, np.float64).copy()
    logits[:, [PAD, BOS]] = -np.inf
    return logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)


def length_penalty(length, alpha):
    return ((5.0 + length) / 6.0) ** alpha


def hypothesis_length(seq, max_length):
    """Number of generated tokens: up to and including EOS, else `max_length`."""
    seq = list(seq)
    return seq.index(EOS) + 1 if EOS in seq[:max_length] else max_length


def exhaustive_search(model, memory, max_length, alpha):
    """Best (sequence, normalised score) over every hypothesis of one sentence."""
    prefixes, logps = [()], np.zeros(1)
    best = ((), -np.inf)
    state = model.initial_state(memory)
    for depth in range(max_length):
        n = len(prefixes)
        tiled = {key: tf.repeat(value, n, axis=0) for key, value in memory.items()}
        tokens = tf.constant([p[-1] if p else BOS for p in prefixes], tf.int32)
        logits, state = model.step(tokens, state, tiled)
        log_probs = logps[:, None] + masked_log_probs(logits)
        ends = [EOS] + (CONTENT if depth + 1 == max_length else [])
        for (i, prefix), token in itertools.product(enumerate(prefixes), ends):
            score = log_probs[i, token] / length_penalty(depth + 1, alpha)
            if score > best[1]:
                best = (prefix + (token,), score)
        pairs = list(itertools.product(range(n), CONTENT))
        prefixes = [prefixes[i] + (t,) for i, t in pairs]
        logps = np.array([log_probs[i, t] for i, t in pairs])
        state = {k: tf.gather(v, [i for i, _ in pairs]) for k, v in state.items()}
    return best


def forced_score(model, memory, seq, max_length, alpha):
    """Normalised score of `seq` under `model`, computed by teacher forcing."""
    length = hypothesis_length(seq, max_length)
    state, token, total = model.initial_state(memory), BOS, 0.0
    for target in seq[:length]:
        logits, state = model.step(tf.constant([token], tf.int32), state, memory)
        total += masked_log_probs(logits)[0, target]
        token = target
    return total / length_penalty(length, alpha)


# === Tests ===


def test_beam_size_one_equals_greedy_unless_an_earlier_eos_wins():
    # With alpha = 0 the single alive beam follows the greedy path, so beam search returns the
    # greedy hypothesis, except when an EOS it saw earlier on that path (the second of its 2K = 2
    # candidates) scores better than the greedy ending, as for sentences 0 and 4 here.
    model, memory = ToyRNN(seed=0), make_memory([3, 5, 2, 4, 6, 1])
    max_lengths = [6, 4, 7, 5, 8, 3]
    greedy_ids, greedy_scores = run_greedy(model, memory, max_lengths)
    beam_ids, beam_scores = run_beam(model, memory, max_lengths, beam_size=1, alpha=0.0)
    same = (beam_ids[:, 0] == greedy_ids).all(axis=1)
    np.testing.assert_allclose(beam_scores[same, 0], greedy_scores[same], rtol=1e-5)
    np.testing.assert_array_equal(same, [False, True, True, True, False, True])
    for ids, score, ref_ids, ref_score in zip(
        beam_ids[~same, 0],
        beam_scores[~same, 0],
        greedy_ids[~same],
        greedy_scores[~same],
        strict=True,
    ):
        end = list(ids).index(EOS)
        np.testing.assert_array_equal(ids[:end], ref_ids[:end])
        assert score > ref_score


@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_beam_finds_exhaustive_optimum(alpha):
    model, lengths = ToyRNN(seed=3), [3, 5, 2]
    memory, max_lengths = make_memory(lengths, seed=4), [4, 3, 4]
    ids, scores = run_beam(model, memory, max_lengths, beam_size=5, alpha=alpha)
    for i, (n, m) in enumerate(zip(lengths, max_lengths, strict=True)):
        seq, score = exhaustive_search(model, slice_memory(memory, i, n), m, alpha)
        np.testing.assert_array_equal(ids[i, 0, : len(seq)], seq)
        assert not ids[i, 0, len(seq) :].any()
        np.testing.assert_allclose(scores[i, 0], score, rtol=1e-5)


def test_beam_keeps_early_eos_over_worse_continuations():
    # Step 0: EOS 0.5, token 3 0.3; afterwards every continuation costs about log(1/4) per token.
    first = [0, 0, 0.5, 0.3, 0.1, 0.05, 0.05]
    later = [0, 0, 0.02, 0.245, 0.245, 0.245, 0.245]
    model = TableModel([first, later])
    ids, scores = run_beam(model, dummy_memory(2), [4, 4], beam_size=3, alpha=0.6)
    np.testing.assert_array_equal(ids[:, 0], [[EOS, 0, 0, 0]] * 2)
    np.testing.assert_allclose(scores[:, 0], np.log(0.5), rtol=1e-5)


def test_early_stop_bound_uses_penalty_at_max_length():
    # After step 0 the finished [EOS] (-0.69) beats the alive [3] (-0.80), but with alpha = 1 the
    # alive beam can still reach -0.80 / lp(6) = -0.44, and [3] * 6 does (-0.85 / lp(6) = -0.46).
    first = [0, 0, 0.5, 0.45, 0.05, 0, 0]
    later = [0, 0, 0.001, 0.989, 0.004, 0.003, 0.003]
    model = TableModel([first, later])
    ids, scores = run_beam(model, dummy_memory(2), [6, 1], beam_size=1, alpha=1.0)
    np.testing.assert_array_equal(ids[:, 0], [[3] * 6, [EOS, 0, 0, 0, 0, 0]])
    expected = (np.log(0.45) + 5 * np.log(0.989)) / length_penalty(6, 1.0)
    np.testing.assert_allclose(scores[:, 0], [expected, np.log(0.5)], rtol=1e-5)


def test_top_beam_stopping_ends_when_the_best_candidate_is_eos():
    """OpenNMT-py's rule on the case above: the best candidate of step 0 is EOS, so the search
    ends there with [EOS], where the bound goes on to the better [3] * 6."""
    first = [0, 0, 0.5, 0.45, 0.05, 0, 0]
    later = [0, 0, 0.001, 0.989, 0.004, 0.003, 0.003]
    model = TableModel([first, later])
    ids, scores = run_beam(model, dummy_memory(1), [6], beam_size=1, alpha=1.0, stopping="top_beam")
    np.testing.assert_array_equal(ids[0, 0], [EOS, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(scores[0, 0], np.log(0.5), rtol=1e-5)


def test_top_beam_stopping_waits_for_n_best_finished_hypotheses():
    first = [0, 0, 0.5, 0.45, 0.05, 0, 0]
    later = [0, 0, 0.001, 0.989, 0.004, 0.003, 0.003]
    model = TableModel([first, later])
    ids, scores = run_beam(
        model, dummy_memory(1), [6], beam_size=2, alpha=1.0, n_best=2, stopping="top_beam"
    )
    np.testing.assert_array_equal(ids[0], [[3] * 6, [EOS, 0, 0, 0, 0, 0]])
    assert np.isfinite(scores).all()


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_top_beam_stopping_never_scores_above_the_bound(seed):
    """The bound's result is the best the beam can find: the sooner rule can only match it or
    score lower, and it mostly matches."""
    model, lengths = ToyRNN(seed=seed, eos_bias=0.5), [5, 3, 7, 2, 4, 6]
    memory, max_lengths = make_memory(lengths, seed=seed + 1), [12, 9, 14, 6, 10, 11]
    _, bound = run_beam(model, memory, max_lengths, beam_size=4)
    _, sooner = run_beam(model, memory, max_lengths, beam_size=4, stopping="top_beam")
    assert (sooner[:, 0] <= bound[:, 0] + 1e-6).all()
    assert np.isclose(sooner[:, 0], bound[:, 0], rtol=1e-6).sum() >= 3


@pytest.mark.parametrize("stopping", ["bound", "top_beam"])
def test_done_sentences_leave_the_batch_and_results_do_not_change(stopping):
    """A sentence that is done is dropped from the batch: the step function sees fewer rows as
    sentences finish, and every result equals that of the sentence decoded alone."""
    model, lengths = ToyRNN(seed=31, eos_bias=1.5), [5, 3, 7, 2, 4, 6]
    memory, max_lengths = make_memory(lengths, seed=32), [12, 3, 14, 6, 10, 4]
    rows_seen = []

    def step(tokens, state, memory):
        rows_seen.append(int(tf.shape(tokens)[0]))
        return model.step(tokens, state, memory)

    settings = dict(beam_size=4, alpha=0.6, bos_id=BOS, eos_id=EOS, n_best=2, stopping=stopping)
    state = model.initial_state(memory)
    ids, scores = beam_search(step, state, memory, max_lengths=tf.constant(max_lengths), **settings)
    assert rows_seen[0] == 6 * 4 and rows_seen[-1] < 6 * 4
    assert rows_seen == sorted(rows_seen, reverse=True)
    for i in range(len(lengths)):
        alone = {k: v[i : i + 1] for k, v in memory.items()}
        one_ids, one_scores = beam_search(
            model.step,
            model.initial_state(alone),
            alone,
            max_lengths=tf.constant(max_lengths[i : i + 1]),
            **settings,
        )
        width = one_ids.shape[-1]
        np.testing.assert_array_equal(ids.numpy()[i, :, :width], one_ids.numpy()[0])
        assert not ids.numpy()[i, :, width:].any()
        np.testing.assert_allclose(scores.numpy()[i], one_scores.numpy()[0], rtol=1e-6)


def test_greedy_drops_done_sentences_too():
    model, lengths = ToyRNN(seed=33, eos_bias=0.0), [5, 3, 7, 2]
    memory, max_lengths = make_memory(lengths, seed=34), [12, 3, 14, 6]
    rows_seen = []

    def step(tokens, state, memory):
        rows_seen.append(int(tf.shape(tokens)[0]))
        return model.step(tokens, state, memory)

    ids, scores = greedy_search(
        step,
        model.initial_state(memory),
        memory,
        bos_id=BOS,
        eos_id=EOS,
        max_lengths=tf.constant(max_lengths),
    )
    assert rows_seen[0] == 4 and rows_seen[-1] < 4
    for i in range(len(lengths)):
        alone = {k: v[i : i + 1] for k, v in memory.items()}
        one_ids, one_scores = run_greedy(model, alone, max_lengths[i : i + 1])
        width = one_ids.shape[-1]
        np.testing.assert_array_equal(ids.numpy()[i, :width], one_ids[0])
        assert not ids.numpy()[i, width:].any()
        np.testing.assert_allclose(scores.numpy()[i], one_scores[0], rtol=1e-6)


def test_unknown_stopping_rule_names_the_setting():
    with pytest.raises(ValueError, match="decode.stopping='soon'"):
        run_beam(ToyRNN(), make_memory([2]), [3], stopping="soon")


def test_greedy_stops_at_eos_and_pads():
    model = TableModel([[0, 0, 0.4, 0.6, 0, 0, 0], [0, 0, 0.7, 0.1, 0.2, 0, 0]])
    ids, scores = run_greedy(model, dummy_memory(2), [5, 3])
    np.testing.assert_array_equal(ids, [[3, EOS, 0, 0, 0]] * 2)
    np.testing.assert_allclose(scores, np.log(0.6) + np.log(0.7), rtol=1e-5)


def test_sentence_result_does_not_depend_on_batch():
    model, lengths = ToyRNN(seed=5), [3, 6, 1, 4]
    memory, max_lengths = make_memory(lengths, seed=6), [5, 8, 2, 6]
    batch_beam = run_beam(model, memory, max_lengths, beam_size=3, n_best=2)
    batch_greedy = run_greedy(model, memory, max_lengths)
    for i, (n, m) in enumerate(zip(lengths, max_lengths, strict=True)):
        alone = slice_memory(memory, i, n)
        for (ids, scores), (ref_ids, ref_scores) in [
            (batch_beam, run_beam(model, alone, [m], beam_size=3, n_best=2)),
            (batch_greedy, run_greedy(model, alone, [m])),
        ]:
            np.testing.assert_array_equal(ids[i, ..., :m], ref_ids[0])
            assert not ids[i, ..., m:].any()
            np.testing.assert_allclose(scores[i], ref_scores[0], rtol=1e-5)


def test_n_best_sorted_distinct_and_correctly_scored():
    model, lengths = ToyRNN(seed=7), [4, 2]
    memory, max_lengths = make_memory(lengths, seed=8), [6, 5]
    ids, scores = run_beam(model, memory, max_lengths, beam_size=4, n_best=4)
    assert ids.shape == (2, 4, 6) and scores.shape == (2, 4)
    assert np.isfinite(scores).all()
    assert (np.diff(scores, axis=1) <= 0).all()
    for i, (n, m) in enumerate(zip(lengths, max_lengths, strict=True)):
        assert len({tuple(seq) for seq in ids[i]}) == 4
        for seq, score in zip(ids[i], scores[i], strict=True):
            ref = forced_score(model, slice_memory(memory, i, n), seq, m, alpha=0.6)
            np.testing.assert_allclose(score, ref, rtol=1e-5)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_stopping_at_n_best_finished_keeps_the_same_best_hypotheses(seed):
    """A sentence stops once its n_best-th finished score beats the alive bound; its n_best
    best are those of a search that waits for all K finished hypotheses."""
    model, lengths = ToyRNN(seed=seed, eos_bias=0.5), [5, 3, 7, 2]
    memory, max_lengths = make_memory(lengths, seed=seed + 1), [12, 9, 14, 6]
    all_ids, all_scores = run_beam(model, memory, max_lengths, beam_size=4, n_best=4)
    for n_best in (1, 2):
        ids, scores = run_beam(model, memory, max_lengths, beam_size=4, n_best=n_best)
        np.testing.assert_array_equal(ids, all_ids[:, :n_best])
        np.testing.assert_allclose(scores, all_scores[:, :n_best], rtol=1e-6)


@pytest.mark.parametrize("n_best", [0, 5])
def test_n_best_outside_beam_raises(n_best):
    model, memory = ToyRNN(), make_memory([2])
    with pytest.raises(ValueError, match="n_best"):
        run_beam(model, memory, [3], beam_size=4, n_best=n_best)


@pytest.mark.parametrize("chunk", [1, 4, 6])
def test_top_k_by_chunks_equals_top_k_with_ties(chunk):
    rng = np.random.default_rng(0)
    x = rng.integers(-3, 3, size=(5, 24)).astype(np.float32)  # many ties
    x[rng.random(x.shape) < 0.3] = -np.inf
    x[0] = -np.inf
    ones = tf.ones((5, 24 // chunk))
    values, indices = top_k._top_k_by_chunks(tf.constant(x), 4, chunk, ones)
    ref_values, ref_indices = tf.math.top_k(x, 4)
    np.testing.assert_array_equal(values, ref_values)
    np.testing.assert_array_equal(indices, ref_indices)


@pytest.mark.parametrize("chunk", [1, 4, 6])
def test_top_k_by_chunks_with_chunk_scales_equals_top_k_of_the_products(chunk):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 4, size=(5, 24)).astype(np.float32) / 4  # probabilities, many ties
    scale = rng.choice([0.0, 0.5, 1.0], size=(5, 24 // chunk)).astype(np.float32)
    values, indices = top_k._top_k_by_chunks(tf.constant(x), 4, chunk, tf.constant(scale))
    ref_values, ref_indices = tf.math.top_k(x * np.repeat(scale, chunk, axis=1), 4)
    np.testing.assert_array_equal(values, ref_values)
    np.testing.assert_array_equal(indices, ref_indices)


@pytest.mark.parametrize("vocab", [60, 61])
def test_chunked_candidate_selection_equals_plain_top_k(monkeypatch, vocab):
    # Flat random distributions over 60 tokens spread the 2K = 8 best candidates over many of the
    # 4 * 15 chunks of 4 scores; a huge minimum chunk size turns chunking off. 61 is prime: its
    # scores are padded to 64 for chunks of 4.
    probs = np.random.default_rng(4).dirichlet(np.full(vocab, 5.0), size=6)
    probs[:, [PAD, BOS]] = 0
    model, memory, max_lengths = TableModel(probs), dummy_memory(2), [6, 4]
    monkeypatch.setattr(top_k, "CHUNK", 4)
    assert top_k.chunk_size(vocab) == 4
    padded = top_k._pad_to_multiple(tf.zeros((1, 1, vocab)), 4).shape[-1]
    assert padded == (64 if vocab == 61 else 60)
    ids, scores = run_beam(model, memory, max_lengths, beam_size=4, n_best=4)
    monkeypatch.setattr(top_k, "MIN_CHUNK", 10**9)
    ref_ids, ref_scores = run_beam(model, memory, max_lengths, beam_size=4, n_best=4)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_array_equal(scores, ref_scores)
    assert np.isfinite(scores).all()


def test_min_length_blocks_eos():
    model = TableModel([[0, 0, 0.9, 0.1, 0, 0, 0]])  # EOS is always the most likely token
    greedy_ids, _ = run_greedy(model, dummy_memory(1), [5], min_length=2)
    beam_ids, _ = run_beam(model, dummy_memory(1), [5], beam_size=3, n_best=3, min_length=2)
    np.testing.assert_array_equal(greedy_ids, [[3, 3, EOS, 0, 0]])
    np.testing.assert_array_equal(beam_ids[0, 0], [3, 3, EOS, 0, 0])
    assert not (beam_ids[..., :2] == EOS).any()


class Translator(tf.Module):
    """Beam and greedy search behind a SavedModel-style signature with unknown batch size."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None, HIDDEN], tf.float32),
            tf.TensorSpec([None, None], tf.bool),
            tf.TensorSpec([None], tf.int32),
        ]
    )
    def decode(self, enc, mask, max_lengths):
        memory = {"enc": enc, "mask": mask}
        state = self.model.initial_state(memory)
        kwargs = {"bos_id": BOS, "eos_id": EOS, "max_lengths": max_lengths}
        step = self.model.step
        ids, scores = beam_search(step, state, memory, beam_size=3, alpha=0.6, n_best=2, **kwargs)
        greedy_ids, _ = greedy_search(step, state, memory, min_length=3, **kwargs)
        return {"ids": ids, "scores": scores, "greedy_ids": greedy_ids}


def test_search_in_saved_model_with_unknown_batch(tmp_path):
    model = ToyRNN(seed=9)
    tf.saved_model.save(Translator(model), str(tmp_path))
    decode = tf.saved_model.load(str(tmp_path)).decode
    for lengths, max_lengths in [([3, 5, 2], [4, 6, 5]), ([4], [3])]:
        memory = make_memory(lengths, seed=10)
        out = decode(memory["enc"], memory["mask"], tf.constant(max_lengths))
        ref_ids, ref_scores = run_beam(model, memory, max_lengths, beam_size=3, n_best=2)
        np.testing.assert_array_equal(out["ids"].numpy(), ref_ids)
        np.testing.assert_allclose(out["scores"].numpy(), ref_scores, rtol=1e-5)
        ref_greedy_ids, _ = run_greedy(model, memory, max_lengths, min_length=3)
        np.testing.assert_array_equal(out["greedy_ids"].numpy(), ref_greedy_ids)
        assert not (ref_greedy_ids[:, :3] == EOS).any()


# === Beam settings given as scalar tensors ===


def tensor_settings(beam_size, alpha, n_best):
    """The settings as the scalar tensors of a SavedModel signature."""
    return {
        "beam_size": tf.constant(beam_size, tf.int32),
        "alpha": tf.constant(alpha, tf.float32),
        "n_best": tf.constant(n_best, tf.int32),
    }


def test_tensor_settings_match_python_numbers():
    model, memory, max_lengths = ToyRNN(seed=5), make_memory([3, 6, 1, 4], seed=6), [5, 8, 2, 6]
    ref_ids, ref_scores = run_beam(model, memory, max_lengths, beam_size=3, alpha=0.6, n_best=2)
    ids, scores = run_beam(model, memory, max_lengths, **tensor_settings(3, 0.6, 2))
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_array_equal(scores, ref_scores)


class TensorSettingsTranslator(tf.Module):
    """Beam search whose beam size, alpha and n-best are inputs of the signature."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None, HIDDEN], tf.float32, name="enc"),
            tf.TensorSpec([None, None], tf.bool, name="mask"),
            tf.TensorSpec([None], tf.int32, name="max_lengths"),
            tf.TensorSpec([], tf.int32, name="beam_size"),
            tf.TensorSpec([], tf.float32, name="alpha"),
            tf.TensorSpec([], tf.int32, name="n_best"),
        ]
    )
    def decode(self, enc, mask, max_lengths, beam_size, alpha, n_best):
        memory = {"enc": enc, "mask": mask}
        ids, scores = beam_search(
            self.model.step,
            self.model.initial_state(memory),
            memory,
            beam_size=beam_size,
            alpha=alpha,
            n_best=n_best,
            bos_id=BOS,
            eos_id=EOS,
            max_lengths=max_lengths,
        )
        return {"ids": ids, "scores": scores}


@pytest.fixture(scope="module")
def tensor_settings_decode(tmp_path_factory):
    """The `decode` signature of a saved and reloaded `TensorSettingsTranslator`: one graph."""
    model, path = ToyRNN(seed=9), str(tmp_path_factory.mktemp("tensor_settings"))
    module = TensorSettingsTranslator(model)
    tf.saved_model.save(module, path, signatures={"decode": module.decode.get_concrete_function()})
    return model, tf.saved_model.load(path).signatures["decode"]


@pytest.mark.parametrize(
    "beam_size, alpha, n_best, lengths, max_lengths",
    [(1, 0.0, 1, [3, 5, 2], [4, 6, 5]), (3, 0.6, 2, [4], [3]), (5, 1.0, 5, [2, 6], [5, 4])],
)
def test_saved_model_takes_beam_settings_as_tensors(
    tensor_settings_decode, beam_size, alpha, n_best, lengths, max_lengths
):
    model, decode = tensor_settings_decode
    memory = make_memory(lengths, seed=10)
    out = decode(
        enc=memory["enc"],
        mask=memory["mask"],
        max_lengths=tf.constant(max_lengths),
        **tensor_settings(beam_size, alpha, n_best),
    )
    ref_ids, ref_scores = run_beam(
        model, memory, max_lengths, beam_size=beam_size, alpha=alpha, n_best=n_best
    )
    assert out["ids"].shape == (len(lengths), n_best, max(max_lengths))
    np.testing.assert_array_equal(out["ids"].numpy(), ref_ids)
    np.testing.assert_allclose(out["scores"].numpy(), ref_scores, rtol=1e-5)


def test_saved_model_rejects_tensor_n_best_above_beam_size(tensor_settings_decode):
    _, decode = tensor_settings_decode
    memory = make_memory([3], seed=10)
    with pytest.raises(tf.errors.InvalidArgumentError, match="n_best must be between 1 and"):
        decode(
            enc=memory["enc"],
            mask=memory["mask"],
            max_lengths=tf.constant([4]),
            **tensor_settings(beam_size=3, alpha=0.6, n_best=4),
        )


@pytest.mark.parametrize(
    "beam_size, alpha, n_best, message",
    [
        (0, 0.6, 1, "beam_size must be >= 1"),
        (3, 0.6, 0, "n_best must be between 1 and beam_size"),
        (3, 0.6, 4, "n_best must be between 1 and beam_size"),
        (3, -0.5, 1, "alpha must be >= 0"),
    ],
)
def test_invalid_tensor_settings_raise_eagerly(beam_size, alpha, n_best, message):
    model, memory = ToyRNN(), make_memory([2])
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        run_beam(model, memory, [3], **tensor_settings(beam_size, alpha, n_best))
