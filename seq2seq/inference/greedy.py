"""Greedy (arg-max) decoding over a model step function (`seq2seq.model.step`)."""

import functools
from typing import NamedTuple

import tensorflow as tf

from seq2seq.inference import search


class _GreedyLoop(NamedTuple):
    """Loop variables of greedy search (`A` active sentences, `L` output positions)."""

    step: tf.Tensor  # () number of tokens generated so far
    tokens: tf.Tensor  # (A,) previous token
    state: object  # nested, leading dim A
    ids: tf.Tensor  # (A, L)
    scores: tf.Tensor  # (A,)
    done: tf.Tensor  # (A,) bool


def _greedy_step(loop, memory, max_lengths, *, step_fn, settings):
    """Appends the arg-max token to every active sentence."""
    logits, state = step_fn(loop.tokens, loop.state, memory)
    logits = search.masked_logits(logits, loop.step, settings)  # (A, V)
    token = tf.argmax(logits, axis=-1, output_type=tf.int32)
    # A softmax and one log a sentence: TensorFlow's log-softmax is much slower on a CPU.
    token_logp = tf.math.log(tf.gather(tf.nn.softmax(logits, axis=-1), token, batch_dims=1))
    finished = tf.equal(token, settings.eos_id) | (loop.step + 1 >= max_lengths)
    return _GreedyLoop(
        step=loop.step + 1,
        tokens=token,
        state=state,
        ids=search.write_tokens(loop.ids, token, loop.step),
        scores=loop.scores + token_logp,
        done=finished,
    )


def greedy_search(step_fn, state, memory, *, bos_id, eos_id, max_lengths, min_length=0):
    """Greedy (arg-max) decoding.

    Args:
        step_fn: `step_fn(tokens, state, memory) -> (logits, new_state)` (`seq2seq.model.step`).
        state: nested structure of tensors with leading dim `B`, the initial decoder state.
        memory: nested structure of tensors with leading dim `B` that never changes.
        bos_id: token fed at the first step; never generated.
        eos_id: end-of-sentence token.
        max_lengths: int `(B,)`, per-sentence maximum number of generated tokens (incl. EOS).
        min_length: EOS is forbidden while fewer than `min_length` tokens have been generated.

    Returns:
        `(ids, scores)`: int32 `(B, L)` generated tokens without BOS, EOS included when produced,
        `0` (PAD) after it, with `L = max(max_lengths)`; float32 `(B,)` sum of the log-probs of
        the chosen tokens (incl. EOS).
    """
    settings = search.Settings(bos_id=bos_id, eos_id=eos_id, min_length=min_length)
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
    step = functools.partial(_greedy_step, step_fn=step_fn, settings=settings)
    ids, scores = search.run(
        loop,
        step,
        memory,
        max_lengths,
        max_len,
        results=lambda loop: (loop.ids, loop.scores),
        row_fields=("tokens", "state"),
        rows_per_sentence=1,
    )
    return ids, scores
