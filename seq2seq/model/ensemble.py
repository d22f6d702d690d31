"""Several trained translators decoding as one: the mean of their next-token probabilities.

As OpenNMT-py's and Sockeye's ensembles do, every step averages the members' probabilities (not
their log-probabilities); greedy and beam search run on the average. The members must share
their vocabularies.
"""

import math

import keras
import tensorflow as tf


class Ensemble(keras.Model):
    """`Translator`s decoding together: `encode` and the step function as a single
    `Translator`'s, whose logits are the log of the members' mean next-token probabilities."""

    def __init__(self, members, **kwargs):
        super().__init__(**kwargs)
        self.members = list(members)
        self.built = True  # the members are

    def encode(self, source_ids):
        encoded = [member.encode(source_ids) for member in self.members]
        return [state for state, _ in encoded], [memory for _, memory in encoded]

    def decode_step_fn(self, vocabulary_multiple=1, with_attention=False):
        """The step function, with every member's weights read once, here (`Translator`'s);
        with `with_attention`, the members' mean attention weights too."""
        steps = [
            member.decode_step_fn(vocabulary_multiple, with_attention) for member in self.members
        ]
        return lambda tokens, state, memory: _mean_step(steps, tokens, state, memory)

    def decode_step(self, tokens, state, memory):
        return self.decode_step_fn()(tokens, state, memory)

    def lstm_layers(self):
        return [layer for member in self.members for layer in member.lstm_layers()]

    def call(self, inputs, training=None):
        return _log_mean_probs([member(inputs, training=training) for member in self.members])

    def get_config(self):
        return {"members": [member.get_config() for member in self.members], "name": self.name}


def _mean_step(step_fns, tokens, state, memory):
    steps = [step(tokens, *inputs) for step, *inputs in zip(step_fns, state, memory)]
    logits, states = _log_mean_probs([out[0] for out in steps]), [out[1] for out in steps]
    if len(steps[0]) == 2:
        return logits, states
    return logits, states, _mean_attention([out[2] for out in steps])


def _mean_attention(weights):
    """The mean of `(rows, source)` attention weights whose source axes are padded to different
    lengths (`Attention.pad_source`): cut to the shortest, which holds every real position."""
    width = tf.reduce_min([tf.shape(w)[1] for w in weights])
    return tf.reduce_mean(tf.stack([tf.cast(w[:, :width], tf.float32) for w in weights]), axis=0)


def _log_mean_probs(logits):
    """log of the mean of the softmaxes of `logits` (a list of same-shape tensors)."""
    log_probs = [tf.nn.log_softmax(tf.cast(x, tf.float32)) for x in logits]
    return tf.reduce_logsumexp(tf.stack(log_probs), axis=0) - math.log(len(log_probs))
