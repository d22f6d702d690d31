"""Greedy (arg-max) decoding over a model step function (`seq2seq.model.step`)."""

import functools
from typing import NamedTuple

import tensorflow as tf

from seq2seq.inference import constraints, search


class _GreedyLoop(NamedTuple):
    """Loop variables of greedy search (`A` active sentences, `L` output positions)."""

    step: tf.Tensor  # () number of tokens generated so far
    tokens: tf.Tensor  # (A,) previous token
    state: object  # nested, leading dim A
    ids: tf.Tensor  # (A, L)
    scores: tf.Tensor  # (A,)
    done: tf.Tensor  # (A,) bool


def arg_max(logits, probs, step, memory):
    """Greedy search's choice: the most likely token of each row."""
    return tf.argmax(logits, axis=-1, output_type=tf.int32)


def _greedy_step(loop, memory, max_lengths, *, step_fn, settings, choose):
    """Appends the chosen (by default the arg-max) token to every active sentence."""
    logits, state = step_fn(loop.tokens, loop.state, memory["model"])
    forced_token, forced = None, None
    if "prefix" in memory:
        forced_token, forced = constraints.forced_tokens(memory["prefix"], 1, loop.step)
    logits = search.constrained_logits(logits, loop.step, loop.ids, settings, forced)  # (A, V)
    # A softmax and one log a sentence: TensorFlow's log-softmax is much slower on a CPU.
    probs = tf.nn.softmax(logits, axis=-1)
    token = choose(logits, probs, loop.step, memory)
    if forced is not None:
        token = tf.where(forced, forced_token, token)
    token_logp = tf.math.log(tf.gather(probs, token, batch_dims=1))
    finished = tf.equal(token, settings.eos_id) | (loop.step + 1 >= max_lengths)
    return _GreedyLoop(
        step=loop.step + 1,
        tokens=token,
        state=state,
        ids=search.write_tokens(loop.ids, token, loop.step),
        scores=loop.scores + token_logp,
        done=finished,
    )


def greedy_search(
    step_fn,
    state,
    memory,
    *,
    bos_id,
    eos_id,
    max_lengths,
    min_length=0,
    no_repeat_ngram_size=0,
    prefix=None,
    choose=arg_max,
    per_sentence=None,
):
    """Greedy (arg-max) decoding, or any other choice of one token a step (`choose`).

    Args:
        step_fn: `step_fn(tokens, state, memory) -> (logits, new_state)` (`seq2seq.model.step`).
        state: nested structure of tensors with leading dim `B`, the initial decoder state.
        memory: nested structure of tensors with leading dim `B` that never changes.
        bos_id: token fed at the first step; never generated.
        eos_id: end-of-sentence token.
        max_lengths: int `(B,)`, per-sentence maximum number of generated tokens (incl. EOS).
        min_length: EOS is forbidden while fewer than `min_length` tokens have been generated.
        no_repeat_ngram_size, prefix: `seq2seq.inference.constraints` (0 and None: off).
        choose: `(logits, probs, step, memory) -> tokens` `(A,)`, from the masked logits and
            their softmax `(A, V)`; `memory` holds `per_sentence`'s tensors, for the sentences
            still searching (`seq2seq.inference.sampling`).
        per_sentence: optional dict of tensors with leading dim `B` that `choose` reads.

    Returns:
        `(ids, scores)`: int32 `(B, L)` generated tokens without BOS, EOS included when produced,
        `0` (PAD) after it, with `L = max(max_lengths)`; float32 `(B,)` sum of the log-probs of
        the chosen tokens (incl. EOS).
    """
    settings = search.Settings(
        bos_id=bos_id,
        eos_id=eos_id,
        min_length=min_length,
        no_repeat_ngram_size=no_repeat_ngram_size,
    )
    max_lengths, max_len = search.prepare_max_lengths(max_lengths)
    batch = tf.shape(max_lengths)[0]
    loop = _GreedyLoop(
        step=tf.constant(0),
        tokens=tf.fill([batch], tf.constant(bos_id, tf.int32)),
        state=state,
        ids=tf.zeros([batch, max_len], tf.int32),
        scores=tf.zeros([batch], tf.float32),
        done=tf.zeros([batch], tf.bool),
    )
    step = functools.partial(_greedy_step, step_fn=step_fn, settings=settings, choose=choose)
    ids, scores = search.run(
        loop,
        step,
        search.search_memory(memory, prefix, per_sentence),
        max_lengths,
        max_len,
        results=lambda loop: (loop.ids, loop.scores),
        row_fields=("tokens", "state"),
        rows_per_sentence=1,
    )
    return ids, scores
