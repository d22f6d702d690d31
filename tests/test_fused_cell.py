"""seq2seq.fused_cell: the compiled LSTM step ops build, give Keras's results, and fall back."""

import logging
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq2seq import fused_cell, lstm

B, T, F, H = 5, 7, 6, 8
LENGTHS = np.array([7, 3, 1, 5, 6])

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs a C++ compiler")


def _pair(**kwargs):
    """A Keras LSTM and ours with the same weights."""
    x = tf.zeros((B, T, F))
    ref = keras.layers.LSTM(H, return_sequences=True, return_state=True, **kwargs)
    ours = lstm.LSTM(H, return_sequences=True, return_state=True, **kwargs)
    ref(x)
    ours(x)
    rng = np.random.default_rng(1)
    ours.set_weights([w + 0.3 * rng.normal(size=w.shape) for w in ref.get_weights()])
    ref.set_weights(ours.get_weights())
    return ref, ours


def _training_outputs_and_gradients(layer, x, mask, state, backward):
    valid = tf.cast(mask, tf.float32)[..., None]
    if backward:
        valid = tf.reverse(valid, [1])
    with tf.GradientTape() as tape:
        tape.watch([x, *state])
        y, h, c = layer(x, mask=mask, initial_state=state, training=True)
        y = tf.cast(y, tf.float32) * valid
        loss = tf.reduce_sum(y * y) + tf.reduce_sum(3 * tf.cast(h, tf.float32))
        loss += tf.reduce_sum(tf.cast(c, tf.float32) ** 2)
    grads = tape.gradient(loss, [x, *state, *layer.trainable_weights])
    return [tf.cast(v, tf.float32).numpy() for v in (y, h, c, *grads)]


def _inputs():
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(B, T, F)), tf.float32)
    state = [tf.constant(rng.normal(size=(B, H)), tf.float32) for _ in range(2)]
    return x, tf.sequence_mask(LENGTHS, T), state


def test_the_ops_build_and_load():
    assert fused_cell.load() is not None, "see the log for why the fused cell did not build"
    assert fused_cell.library_path("g++").exists()


@pytest.mark.parametrize("backward", [False, True])
def test_training_matches_keras_in_float32(backward):
    ref, ours = _pair(go_backwards=backward)
    x, mask, state = _inputs()
    expected = _training_outputs_and_gradients(ref, x, mask, state, backward)
    got = _training_outputs_and_gradients(ours, x, mask, state, backward)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, atol=5e-5, rtol=1e-5)


def test_bfloat16_is_float32_rounded():
    ref, ours = _pair()
    mixed = lstm.LSTM(H, return_sequences=True, return_state=True, dtype="mixed_bfloat16")
    x, mask, state = _inputs()
    mixed(x)
    mixed.set_weights(ours.get_weights())
    expected = _training_outputs_and_gradients(ref, x, mask, state, False)
    got = _training_outputs_and_gradients(mixed, x, mask, state, False)
    for e, g in zip(expected, got):  # a few bfloat16 roundings off
        np.testing.assert_allclose(g, e, atol=0.03 * np.abs(e).max())


def _op_types(function, *args):
    graph = function.get_concrete_function(*args).graph.as_graph_def()
    nodes = [*graph.node, *(n for f in graph.library.function for n in f.node_def)]
    return {node.op for node in nodes}


def test_only_training_graphs_use_the_ops():
    _, ours = _pair()
    x, mask, state = _inputs()
    layer_call = tf.function(lambda x, training: ours(x, mask=mask, training=training)[0])
    assert "Seq2seqLstmCell" in _op_types(layer_call, x, True)

    @tf.function
    def gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(ours(x, mask=mask, training=True)[0])
        return tape.gradient(loss, x)

    assert "Seq2seqLstmCellGrad" in _op_types(gradient, x)
    inference = _op_types(layer_call, x, False)  # so exports never need the library
    assert not {"Seq2seqLstmCell", "Seq2seqLstmCellGrad"} & inference


def test_switched_off_or_without_a_compiler_tensorflow_ops_run(monkeypatch, caplog):
    monkeypatch.setenv("SEQ2SEQ_FUSED_CELL", "0")
    assert fused_cell.load.__wrapped__() is None
    monkeypatch.delenv("SEQ2SEQ_FUSED_CELL")
    monkeypatch.setenv("CXX", "no-such-compiler")
    with caplog.at_level(logging.WARNING, logger="seq2seq.fused_cell"):
        assert fused_cell.load.__wrapped__() is None
    assert "no C++ compiler 'no-such-compiler'" in caplog.text


def test_a_failed_build_reports_the_error_and_writes_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQ2SEQ_KERNEL_CACHE", str(tmp_path))
    target = fused_cell.library_path("false")
    assert fused_cell.compile_library("false", target) == "exit code 1"
    assert list(tmp_path.iterdir()) == []


def test_the_cache_key_follows_the_source_and_the_compiler(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQ2SEQ_KERNEL_CACHE", str(tmp_path))
    assert fused_cell.library_path("g++").parent == tmp_path
    assert fused_cell.library_path("g++") != fused_cell.library_path("clang++")
    source = tmp_path / "lstm_cell.cc"
    source.write_text(fused_cell.SOURCE.read_text() + "\n// changed\n")
    before = fused_cell.library_path("g++")
    monkeypatch.setattr(fused_cell, "SOURCE", source)
    assert fused_cell.library_path("g++") != before
