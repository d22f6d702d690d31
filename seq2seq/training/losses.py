"""Masked, optionally label-smoothed cross-entropy and token-level metrics (padding id 0)."""

import keras
import tensorflow as tf
from keras import ops

from seq2seq.model import fused_ops


def smoothed_cross_entropy(labels, logits, label_smoothing):
    """Per-token cross-entropy against (1-eps) one-hot + eps uniform, (...,) float32.

    The gradient (softmax - (1-eps) one-hot - eps/V) is written out: automatic
    differentiation of the gather of each label's log-probability scatters into a (tokens,
    vocabulary) tensor, which cost more than the output projection itself, and TensorFlow's
    fused sparse cross-entropy kernel is slower than `log_softmax` on a CPU.
    Where `fused_ops` can be built, the loss and its gradient are one pass over the logits each.
    """
    flat_labels, flat_logits = _flatten(labels, logits)
    losses = _flat_smoothed_cross_entropy(flat_logits, flat_labels, float(label_smoothing))
    return tf.reshape(losses, tf.shape(labels))


def _flatten(labels, logits):
    """(tokens,) int32 labels and (tokens, vocabulary) float32 logits."""
    flat_logits = tf.reshape(tf.cast(logits, tf.float32), [-1, tf.shape(logits)[-1]])
    return tf.reshape(tf.cast(labels, tf.int32), [-1]), flat_logits


def _flat_smoothed_cross_entropy(logits, labels, eps):
    if fused_ops.load() is not None:
        return _fused_smoothed_cross_entropy(logits, labels, eps)
    rows = tf.stack([tf.range(tf.shape(labels)[0]), labels], 1)  # (tokens, 2)

    @tf.custom_gradient
    def loss(logits):
        log_probs = tf.nn.log_softmax(logits)
        losses = -(1.0 - eps) * tf.gather_nd(log_probs, rows)
        if eps:
            losses -= eps * tf.reduce_mean(log_probs, -1)

        def gradient(upstream):
            uniform = eps / tf.cast(tf.shape(logits)[-1], tf.float32)
            grad = (tf.exp(log_probs) - uniform) * upstream[:, None]
            return tf.tensor_scatter_nd_sub(grad, rows, (1.0 - eps) * upstream)

        return losses, gradient

    return loss(logits)


def _fused_smoothed_cross_entropy(logits, labels, eps):
    library = fused_ops.load()

    @tf.custom_gradient
    def loss(logits):
        losses, log_normalizers = library.seq2seq_smoothed_cross_entropy(
            logits, labels, label_smoothing=eps
        )

        def gradient(upstream):
            return library.seq2seq_smoothed_cross_entropy_grad(
                logits, labels, log_normalizers, upstream, label_smoothing=eps
            )

        return losses, gradient

    return loss(logits)


def token_negative_log_likelihood(labels, logits):
    """-log p(label) per token, without the gradient machinery (for metrics)."""
    if fused_ops.load() is not None:
        return _fused_token_statistics(labels, logits)[0]
    logits = tf.cast(logits, tf.float32)
    label_logits = tf.gather(logits, tf.cast(labels, tf.int32), batch_dims=labels.shape.rank)
    return tf.reduce_logsumexp(logits, -1) - label_logits


def token_hits(labels, logits):
    """1.0 where a token's largest logit (the first, if tied) is its label's, else 0.0."""
    if fused_ops.load() is not None:
        return _fused_token_statistics(labels, logits)[1]
    # tf.argmax, not keras.ops.argmax: Keras's rewrites every -0.0 logit first (five
    # full-size passes over the logits), which changes a hit only when the largest logits are
    # an exact tie of 0.0 and -0.0.
    hits = tf.equal(tf.cast(tf.argmax(logits, -1), tf.int32), tf.cast(labels, tf.int32))
    return tf.cast(hits, tf.float32)


def _fused_token_statistics(labels, logits):
    """(NLL, hits) of every token: one pass over the logits (computed once for both metrics:
    the graph optimizer merges the two identical calls)."""
    flat_labels, flat_logits = _flatten(labels, logits)
    nll, hits = fused_ops.load().seq2seq_token_statistics(flat_logits, flat_labels)
    return tf.reshape(nll, tf.shape(labels)), tf.reshape(hits, tf.shape(labels))


@keras.saving.register_keras_serializable(package="seq2seq")
class MaskedCrossEntropy(keras.losses.Loss):
    """Cross-entropy averaged over the real (non-pad) target tokens of the batch.

    With `label_smoothing` eps the target distribution is (1-eps) one-hot + eps uniform.
    """

    def __init__(self, label_smoothing=0.0, name="masked_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        loss = smoothed_cross_entropy(y_true, y_pred, self.label_smoothing)
        mask = ops.cast(ops.not_equal(y_true, 0), "float32")
        mean = ops.sum(loss * mask) / ops.maximum(ops.sum(mask), 1.0)
        # Keras scales only non-scalar losses by 1/replicas; the replicas' gradients are summed.
        return mean / tf.distribute.get_strategy().num_replicas_in_sync

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


class _MaskedTokenMean(keras.metrics.Metric):
    """Mean of a per-token value over the real target tokens seen since the last reset."""

    def __init__(self, name, **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def token_values(self, y_true, y_pred):
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None):
        values, mask = self.token_values(y_true, y_pred)
        self.total.assign_add(ops.sum(values * mask))
        self.count.assign_add(ops.sum(mask))

    def result(self):
        return self.total / ops.maximum(self.count, 1.0)


@keras.saving.register_keras_serializable(package="seq2seq")
class TokenAccuracy(_MaskedTokenMean):
    def __init__(self, name="token_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)

    def token_values(self, y_true, y_pred):
        mask = ops.cast(ops.not_equal(y_true, 0), "float32")
        return token_hits(y_true, y_pred), mask


@keras.saving.register_keras_serializable(package="seq2seq")
class NegativeLogLikelihood(_MaskedTokenMean):
    """Unsmoothed per-token NLL; perplexity is exp of it."""

    def __init__(self, name="nll", **kwargs):
        super().__init__(name=name, **kwargs)

    def token_values(self, y_true, y_pred):
        mask = ops.cast(ops.not_equal(y_true, 0), "float32")
        return token_negative_log_likelihood(y_true, y_pred), mask
