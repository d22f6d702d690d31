"""Forced decoding: a given translation fed through the search's step function, token by token.

What scoring (`score`), the attention matrix (`attention`) and word alignments (`align`) are
computed from. The step function is the searches' own (`seq2seq.model.step`), so the
log-probability of a hypothesis is the one its search computed, up to rounding.
"""

from typing import NamedTuple

import tensorflow as tf

from seq2seq.inference import search


class Forced(NamedTuple):
    """What forced decoding returns for `B` sentences of at most `T` target tokens."""

    token_log_probs: tf.Tensor  # (B, T) float32, 0 past each sentence's length
    attention: tf.Tensor | None  # (B, T, S') float32, 0 past the length; S' the padded source


def forced_decode(step_fn, state, memory, targets, lengths, settings, *, with_attention=False):
    """Runs `step_fn` over `targets` (teacher forcing), as a search would have generated them.

    Args:
        step_fn: `(tokens, state, memory) -> (logits, state)`, or `(logits, state, attention)`
            with `with_attention` (`Translator.decode_step_fn`).
        state, memory: the model's `encode` of the sources (leading dim `B`).
        targets: int32 `(B, T)` target ids, EOS included, 0 after it.
        lengths: int32 `(B,)` tokens of each target, EOS included.
        settings: the `search.Settings` (BOS, EOS, constraints) the search would mask with.

    Returns:
        `Forced`: the log-probability of each target token under the masked distribution the
        search draws from, and (with `with_attention`) each step's attention weights.
    """
    batch, steps = tf.shape(targets)[0], tf.shape(targets)[1]
    inputs = tf.concat([tf.fill([batch, 1], settings.bos_id), targets[:, :-1]], axis=1)
    log_probs = tf.TensorArray(tf.float32, size=steps)
    attention = tf.TensorArray(tf.float32, size=steps, infer_shape=False)

    def body(t, state, log_probs, attention):
        out = step_fn(inputs[:, t], state, memory)
        logits = search.constrained_logits(out[0], t, targets, settings)
        token_logp = tf.gather(tf.nn.log_softmax(logits), targets[:, t], batch_dims=1)
        if with_attention:
            attention = attention.write(t, tf.cast(out[2], tf.float32))
        return t + 1, out[1], log_probs.write(t, token_logp), attention

    _, _, log_probs, attention = tf.while_loop(
        lambda t, *_: t < steps, body, (tf.constant(0), state, log_probs, attention)
    )
    valid = tf.range(steps)[None, :] < lengths[:, None]  # (B, T)
    token_log_probs = tf.where(valid, tf.transpose(log_probs.stack()), 0.0)
    if not with_attention:
        return Forced(token_log_probs, None)
    weights = tf.transpose(attention.stack(), [1, 0, 2])  # (B, T, S')
    return Forced(token_log_probs, tf.where(valid[:, :, None], weights, 0.0))
