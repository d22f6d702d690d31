"""GNMT-style beam search over a model step function (`seq2seq.model.step`).

Each step extends the K alive beams of a sentence, keeps the 2K best candidates, makes the K best
non-EOS ones the new alive set, and merges the EOS candidates into the K-best finished set with
score `sum log-prob / ((5 + len) / 6) ** alpha` (`len` counts EOS). At its max length every
candidate of a sentence counts as finished, so unfinished beams are scored with their length.
Only the state is reordered each step; the memory keeps one row per sentence.

Reference: Wu et al. 2016, "Google's Neural Machine Translation System" (GNMT), section 7.
"""

import functools
from typing import NamedTuple

import tensorflow as tf

from seq2seq.inference import constraints, search, top_k
from seq2seq.inference.settings import check_beam_settings
from seq2seq.model.step import NEG_INF


class _BeamLoop(NamedTuple):
    """Loop variables of beam search (`A` active sentences, `K` beams, `L` output positions)."""

    step: tf.Tensor  # () number of tokens generated so far
    tokens: tf.Tensor  # (A*K,) last token of each alive beam
    state: object  # nested, leading dim A*K
    alive_seq: tf.Tensor  # (A, K, L)
    alive_logp: tf.Tensor  # (A, K) sum of log-probs, -inf for empty slots
    fin_seq: tf.Tensor  # (A, K, L)
    fin_score: tf.Tensor  # (A, K) length-normalised score, -inf for empty slots
    top_finished: tf.Tensor  # (A,) bool: a step's best candidate was EOS
    done: tf.Tensor  # (A,) bool


class _Candidates(NamedTuple):
    """The 2K best one-token extensions of the alive beams of each sentence."""

    logp: tf.Tensor  # (A, 2K)
    parent: tf.Tensor  # (A, 2K) index of the alive beam that was extended
    token: tf.Tensor  # (A, 2K)
    seq: tf.Tensor  # (A, 2K, L)


# === Stopping rules: when a sentence's search ends (besides its max length or no alive beam) ===


def _stop_when_bound(alive_logp, kept, top_finished, max_lengths, settings):
    """Once the `n_best` best finished hypotheses can no longer change: the `n_best`-th finished
    score beats the best score an alive beam could still reach (the best alive log-prob divided by
    the length penalty at the sentence's max length, an upper bound for `alpha >= 0`, since
    log-probs only decrease and the penalty only grows). The result is the beam's best."""
    return kept > alive_logp[:, 0] / search.length_penalty(max_lengths, settings.alpha)


def _stop_at_top_beam(alive_logp, kept, top_finished, max_lengths, settings):
    """OpenNMT-py's rule: once a step's best candidate was EOS and `n_best` hypotheses have
    finished. Sooner; a longer hypothesis that would have scored better can be missed."""
    return top_finished & (kept > NEG_INF)


STOPPING_RULES = {"bound": _stop_when_bound, "top_beam": _stop_at_top_beam}


def _sentence_done(alive_logp, fin_score, top_finished, at_max, max_lengths, settings):
    kept = tf.gather(fin_score, settings.n_best - 1, axis=1)  # the n_best-th finished score
    rule = STOPPING_RULES[settings.stopping]
    stop = rule(alive_logp, kept, top_finished, max_lengths, settings)
    return at_max | tf.equal(alive_logp[:, 0], NEG_INF) | stop


# === One step ===


def _gather_beams(tensor, indices):
    """Picks beams per sentence: `tensor` `(A, K, ...)`, `indices` `(A, M)` -> `(A, M, ...)`."""
    return tf.gather(tensor, indices, batch_dims=1)


def _reorder_state(state, parent, beam_size):
    """Reorders the flat `(A*K, ...)` state so that beam `k` continues from `parent[a, k]`."""
    offsets = tf.range(tf.shape(parent)[0])[:, None] * beam_size
    flat = tf.reshape(parent + offsets, [-1])  # (A*K,)
    return tf.nest.map_structure(lambda x: tf.gather(x, flat), state)


def _top_candidates(alive_logp, probs, alive_seq, step, beam_size):
    """Returns the 2K best one-token extensions of the alive beams (`probs` `(A, K, V)`).

    Candidates are ranked by `p(beam) * p(token)` relative to the sentence's best beam, the
    order of `log p(beam) + log p(token)`, so that only the 2K chosen ones need a log: on a
    CPU, TensorFlow's log-softmax over `(A * K, V)` costs a multiple of oneDNN's softmax.
    """
    best = tf.reduce_max(alive_logp, axis=1)  # (A,)
    best = tf.where(tf.equal(best, NEG_INF), 0.0, best)  # no alive beam: every score is 0
    beam_scale = tf.exp(alive_logp - best[:, None])  # (A, K)
    value, index = top_k.scaled_top_k(probs, beam_scale, 2 * beam_size)  # (A, 2K), sorted
    width = top_k.padded_width(probs.shape[-1]) if probs.shape[-1] else tf.shape(probs)[-1]
    parent, token = index // width, index % width
    seq = search.write_tokens(_gather_beams(alive_seq, parent), token, step)
    logp = tf.math.log(value) + best[:, None]
    return _Candidates(logp=logp, parent=parent, token=token, seq=seq)


def _update_alive(candidates, finishing, beam_size):
    """New alive set: the K best candidates that do not finish at this step."""
    logp, pos = tf.math.top_k(tf.where(finishing, NEG_INF, candidates.logp), k=beam_size)
    return (
        logp,
        _gather_beams(candidates.seq, pos),
        _gather_beams(candidates.token, pos),
        _gather_beams(candidates.parent, pos),
    )


def _update_finished(fin_seq, fin_score, candidates, finishing, penalty, beam_size):
    """New finished set: the K best of the old finished and the finishing candidates.

    `penalty` is the length penalty of the candidates' length; old entries come first so that
    ties keep them.
    """
    new_score = tf.where(finishing, candidates.logp / penalty, NEG_INF)
    score = tf.concat([fin_score, new_score], axis=1)  # (A, 3K)
    seq = tf.concat([fin_seq, candidates.seq], axis=1)
    score, pos = tf.math.top_k(score, k=beam_size)
    return _gather_beams(seq, pos), score


def _beam_step(loop, memory, max_lengths, *, step_fn, settings):
    """One step of GNMT beam search for every active sentence."""
    k = settings.beam_size
    logits, state = step_fn(loop.tokens, loop.state, memory["model"])
    forced_token, forced = None, None
    if "prefix" in memory:
        forced_token, forced = constraints.forced_tokens(memory["prefix"], k, loop.step)
    history = None  # the hypotheses so far, (A*K, L), for n-gram blocking
    if not constraints.is_off(settings.no_repeat_ngram_size):
        history = tf.reshape(loop.alive_seq, [-1, tf.shape(loop.alive_seq)[-1]])
    logits = search.constrained_logits(logits, loop.step, history, settings, forced)
    probs = tf.nn.softmax(logits, axis=-1)
    if forced is not None:
        probs = constraints.keep_forced(probs, forced_token, forced)
    vocab = probs.shape[-1] or tf.shape(probs)[-1]  # static if known, for chunking
    probs = tf.reshape(probs, [-1, k, vocab])  # (A, K, V)
    cands = _top_candidates(loop.alive_logp, probs, loop.alive_seq, loop.step, k)
    at_max = loop.step + 1 >= max_lengths  # (A,)
    finishing = tf.equal(cands.token, settings.eos_id) | at_max[:, None]  # (A, 2K)
    alive_logp, alive_seq, tokens, parent = _update_alive(cands, finishing, k)
    penalty = search.length_penalty(loop.step + 1, settings.alpha)
    fin_seq, fin_score = _update_finished(
        loop.fin_seq, loop.fin_score, cands, finishing, penalty, k
    )
    top_finished = loop.top_finished | tf.equal(cands.token[:, 0], settings.eos_id)
    done = _sentence_done(alive_logp, fin_score, top_finished, at_max, max_lengths, settings)
    return _BeamLoop(
        step=loop.step + 1,
        tokens=tf.reshape(tokens, [-1]),
        state=_reorder_state(state, parent, k),
        alive_seq=alive_seq,
        alive_logp=alive_logp,
        fin_seq=fin_seq,
        fin_score=fin_score,
        top_finished=top_finished,
        done=done,
    )


def _initial_loop(state, batch, max_len, settings):
    """Beam loop variables before the first step: only beam 0 of each sentence is live."""
    k = settings.beam_size
    first_beam = tf.one_hot(0, k, on_value=0.0, off_value=NEG_INF)  # (K,)
    return _BeamLoop(
        step=tf.constant(0),
        tokens=tf.fill([batch * k], tf.constant(settings.bos_id, tf.int32)),
        state=tf.nest.map_structure(lambda x: tf.repeat(x, k, axis=0), state),
        alive_seq=tf.zeros([batch, k, max_len], tf.int32),
        alive_logp=tf.tile(first_beam[None, :], [batch, 1]),
        fin_seq=tf.zeros([batch, k, max_len], tf.int32),
        fin_score=tf.fill([batch, k], NEG_INF),
        top_finished=tf.zeros([batch], tf.bool),
        done=tf.zeros([batch], tf.bool),
    )


# === Settings: Python numbers or scalar tensors ===


def _assert_settings(beam_size, alpha, n_best):
    """`tf.debugging.Assert` ops for the settings given as tensors (a SavedModel's inputs).

    Eagerly a failed check raises `tf.errors.InvalidArgumentError` at once; in a graph the ops
    are returned, and they fail when run.
    """
    asserts = []
    if tf.is_tensor(beam_size):
        message = "beam_size must be >= 1, got beam_size ="
        asserts.append(tf.debugging.Assert(beam_size >= 1, [message, beam_size]))
    if tf.is_tensor(beam_size) or tf.is_tensor(n_best):
        valid = tf.logical_and(
            tf.greater_equal(n_best, 1), tf.less_equal(n_best, beam_size), name="valid_n_best"
        )
        message = "n_best must be between 1 and beam_size, got n_best ="
        asserts.append(tf.debugging.Assert(valid, [message, n_best, "beam_size =", beam_size]))
    if tf.is_tensor(alpha):
        message = "alpha must be >= 0 (early stopping relies on it), got alpha ="
        asserts.append(tf.debugging.Assert(alpha >= 0.0, [message, alpha]))
    return [op for op in asserts if op is not None]


def _checked_settings(beam_size, alpha, n_best):
    """The settings as `(beam_size, alpha, n_best)`: Python numbers checked at once
    (`check_beam_settings`), tensors as int32, float32 and int32 scalars that depend on their
    asserts, so that nothing downstream runs with invalid settings."""
    check_beam_settings(
        None if tf.is_tensor(beam_size) else beam_size,
        None if tf.is_tensor(alpha) else alpha,
        None if tf.is_tensor(n_best) else n_best,
    )
    beam_size = tf.cast(beam_size, tf.int32) if tf.is_tensor(beam_size) else beam_size
    alpha = tf.cast(alpha, tf.float32) if tf.is_tensor(alpha) else float(alpha)
    n_best = tf.cast(n_best, tf.int32) if tf.is_tensor(n_best) else n_best
    with tf.control_dependencies(_assert_settings(beam_size, alpha, n_best)):
        return tuple(
            tf.identity(arg) if tf.is_tensor(arg) else arg for arg in (beam_size, alpha, n_best)
        )


def beam_search(
    step_fn,
    state,
    memory,
    *,
    beam_size,
    alpha,
    bos_id,
    eos_id,
    max_lengths,
    min_length=0,
    n_best=1,
    stopping="bound",
    no_repeat_ngram_size=0,
    prefix=None,
):
    """GNMT beam search with alive/finished sets, length penalty and per-sentence early stop.

    `beam_size`, `alpha` and `n_best` are Python numbers or scalar tensors (e.g. inputs of a
    SavedModel signature, so one traced graph serves every beam size). Python numbers give static
    shapes (`n_best` in the output shape) and are checked at once; tensors give dynamic shapes and
    are checked by `tf.debugging.Assert` when the graph runs.

    Args:
        step_fn: `step_fn(tokens, state, memory) -> (logits, new_state)` (`seq2seq.model.step`).
        state: nested structure of tensors with leading dim `B`, the initial decoder state.
        memory: nested structure of tensors with leading dim `B` that never changes.
        beam_size: number of beams `K` per sentence, `>= 1`.
        alpha: length-penalty exponent, `>= 0`.
        bos_id: token fed at the first step; never generated.
        eos_id: end-of-sentence token.
        max_lengths: int `(B,)`, per-sentence maximum number of generated tokens (incl. EOS).
        min_length: EOS is forbidden while fewer than `min_length` tokens have been generated.
        n_best: number of hypotheses returned per sentence, `1 <= n_best <= beam_size`.
        stopping: a name of `STOPPING_RULES`: "bound" (the result is proven) or "top_beam"
            (OpenNMT-py's rule, sooner).
        no_repeat_ngram_size, prefix: `seq2seq.inference.constraints` (0 and None: off).

    Returns:
        `(ids, scores)`: int32 `(B, n_best, L)` tokens (no BOS, EOS included, `0` after it) with
        `L = max(max_lengths)`; float32 `(B, n_best)` normalised scores, best first (`-inf` when
        a sentence has fewer than `n_best` possible hypotheses).

    Raises:
        ValueError: a Python setting out of range (`seq2seq.inference.settings`), or an unknown
            `stopping`.
        tf.errors.InvalidArgumentError: the same for settings given as tensors (eagerly at the
            call, in a graph when it runs).
    """
    if stopping not in STOPPING_RULES:
        raise ValueError(f"decode.stopping={stopping!r}: choose one of {sorted(STOPPING_RULES)}")
    beam_size, alpha, n_best = _checked_settings(beam_size, alpha, n_best)
    settings = search.Settings(
        bos_id, eos_id, min_length, beam_size, alpha, n_best, stopping, no_repeat_ngram_size
    )
    max_lengths, max_len = search.prepare_max_lengths(max_lengths)
    loop = _initial_loop(state, tf.shape(max_lengths)[0], max_len, settings)
    step = functools.partial(_beam_step, step_fn=step_fn, settings=settings)
    fin_seq, fin_score = search.run(
        loop,
        step,
        search.search_memory(memory, prefix),
        max_lengths,
        max_len,
        results=lambda loop: (loop.fin_seq, loop.fin_score),
        row_fields=("tokens", "state"),
        rows_per_sentence=beam_size,
    )
    return fin_seq[:, :n_best], fin_score[:, :n_best]
