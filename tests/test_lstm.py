"""seq2seq.lstm.LSTM: the same results as keras.layers.LSTM, and Keras's cuDNN path on a GPU."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq2seq.model import lstm

B, T, F, H = 5, 7, 6, 4
LENGTHS = np.array([7, 3, 1, 5, 6])


def _pair(**kwargs):
    """A Keras LSTM and ours with the same weights."""
    x = tf.zeros((B, T, F))
    ref = keras.layers.LSTM(H, return_sequences=True, return_state=True, **kwargs)
    ours = lstm.LSTM(H, return_sequences=True, return_state=True, **kwargs)
    ref(x)
    ours(x)
    ours.set_weights(
        [w + 0.1 * np.random.default_rng(1).normal(size=w.shape) for w in ref.get_weights()]
    )
    ref.set_weights(ours.get_weights())
    return ref, ours


def _outputs_and_gradients(layer, x, mask, initial_state, backward):
    """States, outputs at real steps, and gradients of a loss using all of them."""
    valid = tf.cast(mask, tf.float32)[..., None]
    if backward:  # a backward layer returns its outputs in reversed time order
        valid = tf.reverse(valid, [1])
    with tf.GradientTape() as tape:
        tape.watch([x, *initial_state])
        y, h, c = layer(x, mask=mask, initial_state=initial_state)
        y = y * valid
        loss = tf.reduce_sum(y * y) + tf.reduce_sum(3 * h) + tf.reduce_sum(c * c)
    grads = tape.gradient(loss, [x, *initial_state, *layer.trainable_weights])
    return [y, h, c, *grads]


@pytest.mark.parametrize("backward", [False, True])
def test_matches_keras_with_masks_initial_states_and_gradients(backward):
    ref, ours = _pair(go_backwards=backward)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(B, T, F)), tf.float32)
    mask = tf.sequence_mask(LENGTHS, T)
    state = [tf.constant(rng.normal(size=(B, H)), tf.float32) for _ in range(2)]
    expected = _outputs_and_gradients(ref, x, mask, state, backward)
    got = _outputs_and_gradients(ours, x, mask, state, backward)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g.numpy(), e.numpy(), atol=2e-5)


def test_padded_outputs_are_zero_as_with_cudnn():
    _, ours = _pair()
    x = tf.ones((B, T, F))
    y, _, _ = ours(x, mask=tf.sequence_mask(LENGTHS, T))
    padding = ~tf.sequence_mask(LENGTHS, T).numpy()
    assert np.abs(y.numpy()[padding]).max() == 0.0


def test_bidirectional_layer_and_bfloat16_work():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        layer = keras.layers.Bidirectional(lstm.LSTM(H, return_sequences=True, return_state=True))
        x = tf.random.normal((B, T, F))
        with tf.GradientTape() as tape:
            y, *states = layer(x, mask=tf.sequence_mask(LENGTHS, T))
            loss = tf.reduce_sum(tf.cast(y, tf.float32))
        grads = tape.gradient(loss, layer.trainable_weights)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert y.dtype == tf.bfloat16 and y.shape == (B, T, 2 * H) and len(states) == 4
    assert isinstance(layer.backward_layer, lstm.LSTM)
    assert all(g is not None and np.isfinite(g.numpy()).all() for g in grads)


def test_a_visible_gpu_gets_keras_cudnn_path(monkeypatch):
    """With a GPU visible, the layer hands the call to Keras, which tries backend.lstm
    (cuDNN) first; the spy records that and falls back as Keras does off a GPU."""
    calls = []
    keras_backend = __import__("keras.src.backend", fromlist=["lstm"])

    def spy(*args, **kwargs):
        calls.append(kwargs.get("go_backwards"))
        raise NotImplementedError

    monkeypatch.setattr(lstm, "_gpu_available", lambda: True)
    monkeypatch.setattr(keras_backend, "lstm", spy)
    _, ours = _pair()
    ours(tf.ones((B, T, F)), mask=tf.sequence_mask(LENGTHS, T))
    assert calls, "Keras's cuDNN entry point was not tried"
    ours.use_cudnn = False  # as during export: no cuDNN, so our loop runs
    calls.clear()
    ours(tf.ones((B, T, F)))
    assert not calls


def test_unusual_configurations_run_keras_loop():
    layer = lstm.LSTM(H, recurrent_dropout=0.1)
    assert not layer._fast_loop_applies()
    assert lstm.LSTM(H)._fast_loop_applies()
    clone = lstm.LSTM.from_config(lstm.LSTM(H, go_backwards=True).get_config())
    assert isinstance(clone, lstm.LSTM) and clone.go_backwards
