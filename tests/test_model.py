import importlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq2seq.model import attention
from seq2seq.model.decoder import Decoder
from seq2seq.model.encoder import Encoder
from seq2seq.model.translator import Bridge, Translator

_tfrnn = importlib.import_module("keras.src.backend.tensorflow.rnn")


def cudnn_eligible(layer, mask=None):
    """Keras 3.15's own test of whether an LSTM call can take the cuDNN kernel (TECH_NOTES §1)."""
    cell = layer.cell
    ok = (
        layer.use_cudnn in ("auto", True)
        and not cell.recurrent_dropout
        and _tfrnn._do_lstm_arguments_support_cudnn(
            cell.activation, cell.recurrent_activation, layer.unroll, cell.use_bias
        )
    )
    if mask is not None:
        m = tf.convert_to_tensor(mask, tf.bool)
        ok = ok and bool(_tfrnn._is_sequence_right_padded(m))
        ok = ok and not bool(_tfrnn._has_fully_masked_sequence(m))
    return ok


def _inputs():
    rng = np.random.default_rng(0)
    src = rng.integers(4, 30, (3, 7)).astype("int32")
    src[0, 4:] = 0
    src[2, 2:] = 0
    tgt = rng.integers(4, 40, (3, 5)).astype("int32")
    tgt[1, 3:] = 0
    return {"encoder_token_ids": src, "decoder_token_ids": tgt}


def _model(**kwargs):
    args = dict(embedding_dim=8, units=12, encoder_layers=2, decoder_layers=2, dropout=0.2)
    return Translator(30, 40, **{**args, **kwargs})


@pytest.mark.parametrize("name", sorted(attention.ATTENTIONS))
def test_shapes_and_padded_source_gets_no_attention(name):
    model = _model(attention=name)
    inputs = _inputs()
    logits, weights = model.forward_with_attention(inputs, training=False)
    assert logits.shape == (3, 5, 40) and logits.dtype == tf.float32
    assert weights.shape == (3, 5, 7)
    np.testing.assert_allclose(weights.numpy().sum(-1), 1.0, rtol=1e-5)
    assert np.abs(weights.numpy()[0, :, 4:]).max() == 0.0
    assert np.abs(weights.numpy()[2, :, 2:]).max() == 0.0


def _attention_inputs(layer, tgt_len=5, src_len=7):
    rng = np.random.default_rng(1)
    query = tf.constant(rng.normal(size=(2, tgt_len, 8)), tf.float32)
    memory = tf.constant(rng.normal(size=(2, src_len, 8)), tf.float32)
    mask = tf.sequence_mask([src_len, 3], src_len)
    return query, memory, layer.project_keys(memory), mask


def _batch_matmul_shapes(fn, *args):
    graph = tf.function(fn).get_concrete_function(*args).graph
    return {
        tuple(op.outputs[0].shape)
        for op in graph.get_operations()
        if op.type.startswith("BatchMatMul")
    }


def test_dot_attention_pads_its_matmuls_to_the_shape_multiple_with_unchanged_results():
    layer = attention.get("general", 8)
    query, memory, keys, mask = _attention_inputs(layer)
    m = layer.shape_multiple
    assert m > 1

    def attend(pad):
        with tf.GradientTape() as tape:
            tape.watch([query, memory])
            context, weights = layer(query, memory, keys, mask, pad_lengths=pad)
            loss = tf.reduce_sum(context**2) + tf.reduce_sum(weights * tf.range(7.0))
        return (context, weights, *tape.gradient(loss, [query, memory]))

    for padded, plain in zip(attend(True), attend(False)):  # equal up to the float32 sum order
        assert padded.shape == plain.shape
        np.testing.assert_allclose(padded.numpy(), plain.numpy(), rtol=1e-4, atol=1e-5)
    padded_shapes = {(2, m, m), (2, m, 8)}  # scores and context, forward and backward
    assert _batch_matmul_shapes(lambda *a: layer(*a), query, memory, keys, mask) == padded_shapes
    assert _batch_matmul_shapes(  # a decoding step (`attend_rows`) is not padded
        lambda *a: layer.attend_rows(*a), tf.reshape(query, (10, 8)), memory, keys, mask
    ) == {(2, 5, 7), (2, 5, 8)}


@pytest.mark.parametrize("name, padded_len", [("general", 16), ("bahdanau", 7)])
def test_encode_pads_a_search_memory_once_for_dot_attention_only(name, padded_len):
    model = _model(attention=name)
    src = _inputs()["encoder_token_ids"]  # (3, 7)
    _, memory = model.encode(tf.constant(src))
    assert {x.shape[1] for x in memory.values()} == {padded_len}
    np.testing.assert_array_equal(memory["mask"].numpy()[:, :7], src != 0)
    assert not memory["mask"].numpy()[:, 7:].any()


@pytest.mark.parametrize("input_feeding", [False, True])
def test_every_lstm_is_cudnn_eligible_with_pipeline_masks(input_feeding):
    model = _model(dropout=0.3, input_feeding=input_feeding)
    model(_inputs())
    mask = _inputs()["encoder_token_ids"] != 0
    layers = model.lstm_layers()
    # 2 bidirectional encoder layers (2 each) + 2 decoder layers. With input feeding the decoder
    # has no keras.layers.LSTM: its LSTMCells run one step at a time in a keras.layers.RNN loop
    # over InputFeedingCell, which is never cuDNN-fused, so only the encoder's 4 layers count.
    assert len(layers) == (4 if input_feeding else 6)
    assert all(cudnn_eligible(layer, mask) for layer in layers)


def test_eligibility_check_can_fail():
    layer = keras.layers.LSTM(4, recurrent_dropout=0.1)
    assert not cudnn_eligible(layer)
    assert not cudnn_eligible(keras.layers.LSTM(4), [[True, False, True]])
    assert not cudnn_eligible(keras.layers.LSTM(4), [[True, True], [False, False]])


def test_step_by_step_decoding_equals_teacher_forcing():
    model = _model(residual=True)
    inputs = _inputs()
    full = model(inputs, training=False).numpy()
    state, memory = model.encode(tf.constant(inputs["encoder_token_ids"]))
    for t in range(5):
        tokens = tf.constant(inputs["decoder_token_ids"][:, t])
        logits, state = model.decode_step(tokens, state, memory)
        for row in range(3):
            if inputs["decoder_token_ids"][row, t]:
                np.testing.assert_allclose(logits.numpy()[row], full[row, t], atol=1e-5)


@pytest.mark.parametrize("bridge", ["copy", "zero", "dense"])
def test_bridges_and_unidirectional_encoder(bridge):
    model = _model(bridge=bridge, bidirectional=False, encoder_layers=1)
    assert model(_inputs()).shape == (3, 5, 40)


def test_get_config_round_trips():
    model = _model(attention="bahdanau_normalized", bridge="dense")
    model(_inputs())
    clone = Translator.from_config(model.get_config())
    clone(_inputs())
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone(_inputs()).numpy(), model(_inputs()).numpy(), atol=1e-6)
    for layer in (model.encoder, model.decoder, model.bridge, model.decoder.attention_layer):
        restored = type(layer).from_config(layer.get_config())
        assert restored.get_config() == layer.get_config()


def test_unknown_names_are_rejected_with_the_setting():
    with pytest.raises(ValueError, match="model.attention='nope'"):
        attention.get("nope", 4)
    with pytest.raises(ValueError, match="model.bridge"):
        Bridge("nope", 4, 1)


def test_layers_are_registered_for_safe_loading():
    for cls in (Encoder, Decoder, Bridge, Translator, attention.GeneralAttention):
        assert keras.saving.get_registered_object(f"seq2seq>{cls.__name__}") is cls


def test_train_step_clips_to_the_global_gradient_norm():
    """SGD with rate 1: the weights move by exactly the clipped gradient, whose global norm is
    the clip (the gradient's own norm is far larger), and the logged norm is the unclipped one."""
    from seq2seq.training.losses import MaskedCrossEntropy

    model = _model(dropout=0.0)
    inputs = _inputs()
    labels = inputs["decoder_token_ids"]
    model(inputs)
    model.compile(
        optimizer=keras.optimizers.SGD(1.0), loss=MaskedCrossEntropy(), gradient_clip_norm=1e-3
    )
    before = [w.numpy() for w in model.trainable_weights]
    logs = model.train_on_batch(inputs, labels, return_dict=True)
    moved = np.sqrt(
        sum(np.sum((w.numpy() - b) ** 2) for w, b in zip(model.trainable_weights, before))
    )
    assert moved == pytest.approx(1e-3, rel=1e-3)
    assert logs["gradient_norm"] > 0.1
