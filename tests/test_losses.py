"""The label-smoothed cross-entropy with its written-out gradient, and the token metrics."""

import numpy as np
import pytest
import tensorflow as tf

from seq2seq.training.losses import (
    MaskedCrossEntropy,
    TokenAccuracy,
    smoothed_cross_entropy,
    token_negative_log_likelihood,
)

RNG = np.random.default_rng(0)
LOGITS = tf.constant(RNG.normal(size=(3, 5, 11)) * 3, tf.float32)
LABELS = tf.constant(RNG.integers(0, 11, size=(3, 5)), tf.int32)


def _reference(labels, logits, eps):
    log_probs = tf.nn.log_softmax(logits)
    nll = -tf.gather(log_probs, labels, batch_dims=2)
    return (1 - eps) * nll - eps * tf.reduce_mean(log_probs, -1)


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_value_and_gradient_equal_the_textbook_formula(eps):
    weights = tf.constant(RNG.random((3, 5)), tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(LOGITS)
        ours = smoothed_cross_entropy(LABELS, LOGITS, eps)
        ref = _reference(LABELS, LOGITS, eps)
        ours_total, ref_total = tf.reduce_sum(ours * weights), tf.reduce_sum(ref * weights)
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), atol=1e-5)
    np.testing.assert_allclose(
        tape.gradient(ours_total, LOGITS).numpy(),
        tape.gradient(ref_total, LOGITS).numpy(),
        atol=1e-6,
    )


def test_masked_mean_ignores_padding_and_metric_nll_is_unsmoothed():
    labels = LABELS.numpy().copy()
    labels[labels == 0] = 1
    labels[:, 3:] = 0  # padding
    labels = tf.constant(labels)
    loss = float(MaskedCrossEntropy(label_smoothing=0.1)(labels, LOGITS))
    expected = _reference(labels, LOGITS, 0.1).numpy()[:, :3].mean()
    assert loss == pytest.approx(expected, rel=1e-5)
    np.testing.assert_allclose(
        token_negative_log_likelihood(labels, LOGITS).numpy(),
        _reference(labels, LOGITS, 0.0).numpy(),
        atol=1e-5,
    )


def test_token_accuracy_counts_hits_at_real_tokens_only():
    labels = tf.constant([[2, 1, 0], [3, 0, 0]])
    logits = tf.constant(
        [
            [[0.0, 0.0, 5.0, 1.0], [0.0, -0.0, -1.0, 2.0], [9.0, 0.0, 0.0, 0.0]],
            [[-0.0, 0.0, 0.0, 0.5], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]],
        ]
    )
    metric = TokenAccuracy()
    metric.update_state(labels, logits)
    assert float(metric.result()) == pytest.approx(2 / 3)  # hits 2 and 3, miss 1; padding ignored
