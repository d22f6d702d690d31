"""seq2seq.fused_ops: the compiled LSTM step ops build, give Keras's results, and fall back."""

import logging
import shutil

import numpy as np
import pytest
import tensorflow as tf

from seq2seq.model import fused_ops, lstm
from seq2seq.training import losses
from tests.test_lstm import LENGTHS, B, F, H, T, _pair

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs a C++ compiler")


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
    assert fused_ops.load() is not None, "see the log for why the fused cell did not build"
    assert fused_ops.library_path("g++").exists()


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
    monkeypatch.setenv("SEQ2SEQ_FUSED_OPS", "0")
    assert fused_ops.load.__wrapped__() is None
    monkeypatch.delenv("SEQ2SEQ_FUSED_OPS")
    monkeypatch.setenv("CXX", "no-such-compiler")
    with caplog.at_level(logging.WARNING, logger="seq2seq.model.fused_ops"):
        assert fused_ops.load.__wrapped__() is None
    assert "no C++ compiler 'no-such-compiler'" in caplog.text


def test_a_failed_build_reports_the_error_and_writes_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQ2SEQ_KERNEL_CACHE", str(tmp_path))
    target = fused_ops.library_path("false")
    assert fused_ops.compile_library("false", target) == "exit code 1"
    assert list(tmp_path.iterdir()) == []


def test_the_cache_key_follows_the_source_and_the_compiler(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQ2SEQ_KERNEL_CACHE", str(tmp_path))
    assert fused_ops.library_path("g++").parent == tmp_path
    assert fused_ops.library_path("g++") != fused_ops.library_path("clang++")
    source = tmp_path / "lstm_cell.cc"
    source.write_text(fused_ops.SOURCES[-1].read_text() + "\n// changed\n")
    before = fused_ops.library_path("g++")
    monkeypatch.setattr(fused_ops, "SOURCES", (*fused_ops.SOURCES[:-1], source))
    assert fused_ops.library_path("g++") != before


def _loss_gradient_and_metrics(labels, logits, eps):
    with tf.GradientTape() as tape:
        tape.watch(logits)
        token_losses = losses.smoothed_cross_entropy(labels, logits, eps)
        total = tf.reduce_sum(token_losses * tf.range(1.0, 5.0))  # a different weight a step
    nll = losses.token_negative_log_likelihood(labels, logits)
    values = (token_losses, tape.gradient(total, logits), nll, losses.token_hits(labels, logits))
    return [v.numpy() for v in values]


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_loss_gradient_and_metrics_match_tensorflow(eps, monkeypatch):
    rng = np.random.default_rng(0)
    logits = tf.constant(rng.normal(size=(3, 4, 11)) * 3, tf.float32)
    labels = tf.constant(rng.integers(0, 11, size=(3, 4)), tf.int32)
    assert fused_ops.load() is not None
    got = _loss_gradient_and_metrics(labels, logits, eps)
    monkeypatch.setattr(fused_ops, "load", lambda: None)
    expected = _loss_gradient_and_metrics(labels, logits, eps)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, atol=2e-6, rtol=1e-6)
    assert 0 < expected[3].sum() < expected[3].size  # some hits, some misses


def test_a_label_outside_the_vocabulary_is_named():
    logits = tf.zeros((2, 3, 5))
    labels = tf.constant([[1, 2, 3], [4, 7, 0]])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"label 7 of token 4 .*\[0, 5\)"):
        losses.smoothed_cross_entropy(labels, logits, 0.1)


def test_an_unwritable_cache_is_reported(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("SEQ2SEQ_KERNEL_CACHE", str(blocker / "kernels"))
    target = fused_ops.library_path("g++")
    assert fused_ops.compile_library("g++", target).startswith(f"cannot create {target.parent}")


def test_the_compilers_first_error_is_reported(monkeypatch, tmp_path):
    compiler = tmp_path / "cxx"
    lines = ["In file included from a.h", "lstm_cell.cc:9: error: boom", "compilation terminated."]
    compiler.write_text("#!/bin/sh\n" + "".join(f"echo '{x}' >&2\n" for x in lines) + "exit 1\n")
    compiler.chmod(0o755)
    monkeypatch.setenv("SEQ2SEQ_KERNEL_CACHE", str(tmp_path / "cache"))
    target = fused_ops.library_path(str(compiler))
    assert fused_ops.compile_library(str(compiler), target) == "lstm_cell.cc:9: error: boom"
    assert not target.exists()
