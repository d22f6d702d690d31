"""Masked, optionally label-smoothed cross-entropy and token-level metrics (padding id 0)."""

import keras
import tensorflow as tf
from keras import ops


def _token_log_probs(labels, logits):
    log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
    nll = -ops.take_along_axis(log_probs, ops.expand_dims(labels, -1), axis=-1)[..., 0]
    mask = ops.cast(ops.not_equal(labels, 0), "float32")
    return log_probs, nll, mask


@keras.saving.register_keras_serializable(package="seq2seq")
class MaskedCrossEntropy(keras.losses.Loss):
    """Cross-entropy averaged over the real (non-pad) target tokens of the batch.

    With `label_smoothing` ε the target distribution is (1-ε) one-hot + ε uniform.
    """

    def __init__(self, label_smoothing=0.0, name="masked_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        log_probs, nll, mask = _token_log_probs(y_true, y_pred)
        loss = nll
        if self.label_smoothing:
            smooth = -ops.mean(log_probs, axis=-1)
            loss = (1.0 - self.label_smoothing) * nll + self.label_smoothing * smooth
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
        hits = ops.equal(ops.cast(ops.argmax(y_pred, -1), y_true.dtype), y_true)
        return ops.cast(hits, "float32"), mask


@keras.saving.register_keras_serializable(package="seq2seq")
class NegativeLogLikelihood(_MaskedTokenMean):
    """Unsmoothed per-token NLL; perplexity is exp of it."""

    def __init__(self, name="nll", **kwargs):
        super().__init__(name=name, **kwargs)

    def token_values(self, y_true, y_pred):
        _, nll, mask = _token_log_probs(y_true, y_pred)
        return nll, mask
