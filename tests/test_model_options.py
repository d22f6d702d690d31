"""Model options: input feeding, tied embeddings, every attention, bridges and encoder variants.

Each model of `MODELS` gets the same checks: shapes, masks, a config round trip and a tiny
training that learns. Every option is on in at least one model (`test_every_option_is_covered`);
options share models because one `fit` trace costs seconds on 2 CPU cores, and one model per
option would push this file past a minute. Models are tiny (vocabulary 20, 16 units).
"""

import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq2seq.inference.beam import beam_search
from seq2seq.inference.greedy import greedy_search
from seq2seq.model import attention
from seq2seq.model.decoder import Decoder, TiedOutputProjection
from seq2seq.model.input_feeding import InputFeedingCell
from seq2seq.model.translator import BRIDGES, Translator
from seq2seq.training.losses import MaskedCrossEntropy

VOCAB, UNITS, BOS, EOS = 20, 16, 1, 2
BASE = dict(embedding_dim=UNITS, units=UNITS, encoder_layers=1, decoder_layers=1, dropout=0.1)
MODELS = {
    "input_feeding": dict(
        input_feeding=True,
        tie_embeddings=True,
        share_embeddings=True,
        attention="dot",
        bridge="zero",
    ),
    "input_feeding_deep": dict(
        input_feeding=True, decoder_layers=2, residual=True, attention="bahdanau", bridge="dense"
    ),
    "tied_unidirectional": dict(tie_embeddings=True, bidirectional=False, attention="general"),
    "residual_deep": dict(
        encoder_layers=2,
        decoder_layers=2,
        residual=True,
        bidirectional=False,
        attention="bahdanau_normalized",
        bridge="dense",
        source_word_dropout=0.2,
    ),
}


def _args(name):
    defaults = {
        key: p.default
        for key, p in inspect.signature(Translator.__init__).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    return {**defaults, **BASE, **MODELS[name]}


def _model(name, **overrides):
    return Translator(VOCAB, VOCAB, **{**BASE, **MODELS[name], **overrides})


def _batch(seed=0):
    """A copy-ish task: the target is the first 4 source tokens then EOS (batch 8, 6 -> 5)."""
    rng = np.random.default_rng(seed)
    src = rng.integers(3, VOCAB, (8, 6)).astype("int32")
    for row, length in enumerate(rng.integers(4, 7, 8)):
        src[row, length:] = 0
    labels = np.concatenate([src[:, :4], np.full((8, 1), EOS)], 1).astype("int32")
    labels[7, 2:] = [EOS, 0, 0]  # one shorter target, right-padded
    shifted = np.where(labels == EOS, 0, labels)[:, :-1]  # BOS + target, without EOS
    decoder_in = np.concatenate([np.full((8, 1), BOS), shifted], 1).astype("int32")
    return {"encoder_token_ids": src, "decoder_token_ids": decoder_in}, labels


def _pad(inputs, key, extra):
    return {**inputs, key: np.pad(inputs[key], ((0, 0), (0, extra)))}


def _distinct_attentions():
    """One name per distinct layer: aliases ("luong", "concat") build exactly the same layer."""
    first = {}
    for name, (cls, defaults) in sorted(attention.ATTENTIONS.items()):
        first.setdefault((cls, tuple(sorted(defaults.items()))), name)
    return set(first.values())


def test_every_option_is_covered():
    def used(key):
        return {_args(name)[key] for name in MODELS}

    assert used("attention") >= _distinct_attentions()
    assert used("bridge") >= set(BRIDGES)
    assert used("bidirectional") == used("input_feeding") == used("tie_embeddings") == {True, False}
    assert used("share_embeddings") == {True, False} and max(used("source_word_dropout")) > 0
    residual = [args for args in map(_args, MODELS) if args["residual"]]
    assert any(args["encoder_layers"] == 2 for args in residual)
    assert {args["input_feeding"] for args in residual if args["decoder_layers"] == 2} == {
        True,
        False,
    }


# === Shapes, masks, configs ===


@pytest.fixture(scope="module", params=sorted(MODELS))
def built(request):
    """A built model of `MODELS` and the batch, shared by the read-only tests."""
    model = _model(request.param)
    inputs, _ = _batch()
    model(inputs)
    return model, inputs


def test_shapes_and_masks(built):
    model, inputs = built
    logits, weights = model.forward_with_attention(inputs, training=False)
    assert logits.shape == (8, 5, VOCAB) and logits.dtype == tf.float32
    assert weights.shape == (8, 5, 6)
    np.testing.assert_allclose(weights.numpy().sum(-1), 1.0, rtol=1e-5)
    source_mask = inputs["encoder_token_ids"] != 0
    assert np.abs(weights.numpy() * ~source_mask[:, None, :]).max() == 0.0
    # Extra padding on either side changes nothing at the real positions.
    longer_source = model(_pad(inputs, "encoder_token_ids", 3), training=False)
    np.testing.assert_allclose(longer_source.numpy(), logits.numpy(), atol=1e-5)
    longer_target = model(_pad(inputs, "decoder_token_ids", 2), training=False)
    target_mask = inputs["decoder_token_ids"] != 0
    np.testing.assert_allclose(
        longer_target.numpy()[:, :5][target_mask], logits.numpy()[target_mask], atol=1e-5
    )


def test_config_and_weights_round_trips_give_identical_outputs(built, tmp_path):
    model, inputs = built
    expected = model(inputs).numpy()
    clone = Translator.from_config(model.get_config())
    clone(inputs)
    clone.set_weights(model.get_weights())
    assert clone.get_config() == model.get_config()
    np.testing.assert_allclose(clone(inputs).numpy(), expected, atol=1e-6)
    decoder = model.decoder
    assert Decoder.from_config(decoder.get_config()).get_config() == decoder.get_config()
    # The checkpoint format: a .weights.h5 file restores every weight.
    model.save_weights(tmp_path / "m.weights.h5")
    clone.set_weights([np.zeros_like(w) for w in clone.get_weights()])
    clone.load_weights(tmp_path / "m.weights.h5")
    np.testing.assert_allclose(clone(inputs).numpy(), expected, atol=1e-6)


def test_new_layers_round_trip_and_are_registered():
    cell = InputFeedingCell(8, 2, "bahdanau_normalized", 0.1, True)
    assert InputFeedingCell.from_config(cell.get_config()).get_config() == cell.get_config()
    tied = TiedOutputProjection(VOCAB)
    assert TiedOutputProjection.from_config(tied.get_config()).get_config() == tied.get_config()
    for cls in (InputFeedingCell, TiedOutputProjection):
        assert keras.saving.get_registered_object(f"seq2seq>{cls.__name__}") is cls


# === Input feeding ===


@pytest.mark.parametrize("name", ["input_feeding", "input_feeding_deep"])
def test_input_feeding_step_by_step_equals_teacher_forcing(name):
    model = _model(name)
    inputs, _ = _batch()
    full, full_weights = model.forward_with_attention(inputs, training=False)
    state, memory = model.encode(tf.constant(inputs["encoder_token_ids"]))
    assert len(state) == 2 * model.decoder_layers + 1  # (h, c) per LSTM layer, then h~
    assert model.decoder.cell.cells[0].kernel.shape == (2 * UNITS, 4 * UNITS)  # [y_t; h~_t-1]
    assert model.decoder.lstm_layers() == []  # LSTM cells in a loop: nothing cuDNN-eligible
    real = inputs["decoder_token_ids"] != 0
    for t in range(5):
        tokens = tf.constant(inputs["decoder_token_ids"][:, t])
        logits, state, weights = model.decode_step_fn(with_attention=True)(tokens, state, memory)
        rows = real[:, t]
        np.testing.assert_allclose(logits.numpy()[rows], full.numpy()[rows, t], atol=1e-5)
        src_len = full_weights.shape[-1]  # the step's weights cover encode's padded source
        np.testing.assert_allclose(
            weights.numpy()[rows, :src_len], full_weights.numpy()[rows, t], atol=1e-5
        )
        assert not weights.numpy()[:, src_len:].any()


def test_input_feeding_cell_needs_the_memory():
    cell = InputFeedingCell(4, 1)
    with pytest.raises(RuntimeError, match="attending"):
        cell(tf.zeros((1, 3)), [tf.zeros((1, 4))] * 3)


def _forced_scores(model, inputs, ids):
    """Sum of the search's log-probs (PAD, BOS banned) of `ids` (B, n, L), by teacher forcing."""
    batch, n, length = ids.shape
    flat = ids.reshape(batch * n, length)
    decoder_in = np.concatenate([np.full((batch * n, 1), BOS), flat[:, :-1]], 1)
    src = np.repeat(inputs["encoder_token_ids"], n, axis=0)
    logits = model({"encoder_token_ids": src, "decoder_token_ids": decoder_in}, training=False)
    logits = logits.numpy().astype("float64")
    logits[..., [0, BOS]] = -np.inf
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    picked = np.take_along_axis(log_probs, flat[..., None], -1)[..., 0]
    return np.where(flat != 0, picked, 0.0).sum(-1).reshape(batch, n)


def test_greedy_and_beam_search_with_input_feeding_match_teacher_forcing():
    model = _model("input_feeding")
    inputs, _ = _batch()
    model(inputs)
    limits = dict(bos_id=BOS, eos_id=EOS, max_lengths=tf.fill([8], 6))
    state, memory = model.encode(tf.constant(inputs["encoder_token_ids"]))
    ids, scores = greedy_search(model.decode_step, state, memory, **limits)
    expected = _forced_scores(model, inputs, ids.numpy()[:, None, :])[:, 0]
    np.testing.assert_allclose(scores.numpy(), expected, atol=1e-4)

    @tf.function  # as in the export; beam search also reorders the state, h~ included
    def beam(state, memory):
        return beam_search(
            model.decode_step, state, memory, beam_size=3, alpha=0.0, n_best=2, **limits
        )

    ids, scores = beam(state, memory)
    np.testing.assert_allclose(
        scores.numpy(), _forced_scores(model, inputs, ids.numpy()), atol=1e-4
    )


# === Tied embeddings ===


def test_tied_embeddings_share_the_matrix():
    model = _model("tied_unidirectional")
    inputs, _ = _batch()
    before = model(inputs, training=False).numpy()
    names = [w.path.split("/")[-1] for w in model.decoder.output_projection.weights]
    assert names == ["bias"]  # no kernel of its own
    embedding = model.decoder.embedding.embeddings
    embedding.assign(embedding.numpy() * 2.0)
    assert not np.allclose(model(inputs, training=False).numpy(), before)


def test_shared_embeddings_are_one_matrix_of_both_sides():
    shared, separate = _model("input_feeding"), _model("input_feeding", share_embeddings=False)
    inputs, _ = _batch()
    before = shared(inputs, training=False).numpy()
    separate(inputs)
    assert shared.encoder.embedding is shared.decoder.embedding
    assert len(shared.trainable_weights) == len(separate.trainable_weights) - 1
    memory = shared.encoder(inputs["encoder_token_ids"])[0].numpy()
    embedding = shared.decoder.embedding.embeddings
    embedding.assign(embedding.numpy() * 2.0)  # the target side's matrix moves the source's
    assert not np.allclose(shared.encoder(inputs["encoder_token_ids"])[0].numpy(), memory)
    assert not np.allclose(shared(inputs, training=False).numpy(), before)


def test_shared_embeddings_need_one_vocabulary():
    with pytest.raises(ValueError, match=r"model\.share_embeddings=true.*20 source and 21"):
        Translator(VOCAB, VOCAB + 1, **{**BASE, "share_embeddings": True})


def test_source_word_dropout_drops_whole_words_in_training_only():
    model = _model("residual_deep", source_word_dropout=0.5, dropout=0.0)
    inputs, _ = _batch()
    model(inputs)
    embedded = tf.ones((64, 30, UNITS))
    dropped = model.encoder._drop_words(embedded).numpy()
    per_word = dropped.reshape(-1, UNITS)
    assert set(np.unique(per_word.min(1))) == {0.0, 2.0}  # a word is dropped whole, or kept x2
    assert 0.4 < (per_word[:, 0] == 0).mean() < 0.6
    plain = _model("residual_deep", source_word_dropout=0.0, dropout=0.0)
    plain(inputs)
    plain.set_weights(model.get_weights())
    np.testing.assert_allclose(
        model(inputs, training=False).numpy(), plain(inputs, training=False).numpy(), atol=1e-6
    )
    assert not np.allclose(
        model(inputs, training=True).numpy(), plain(inputs, training=True).numpy()
    )


def test_tied_embeddings_need_equal_sizes():
    with pytest.raises(ValueError, match=r"model\.tie_embeddings.*\(8\).*\(12\)"):
        Translator(
            VOCAB,
            VOCAB,
            embedding_dim=8,
            units=12,
            encoder_layers=1,
            decoder_layers=1,
            tie_embeddings=True,
        )


# === Training ===


def _loss(model, inputs, labels):
    return float(MaskedCrossEntropy()(labels, model(inputs, training=False)))


def _fit(model, inputs, labels, steps):
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=MaskedCrossEntropy())
    data = tf.data.Dataset.from_tensors((inputs, labels)).repeat()
    return model.fit(data, steps_per_epoch=steps, epochs=1, shuffle=False, verbose=0)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_tiny_training_learns(name):
    # 60 steps, not 30: after 30 the slowest setups (tied embeddings, 2 input-feeding layers) are
    # only ~40% down, after 60 every one is ~70% down. A step is ~10 ms; the fit trace dominates.
    keras.utils.set_random_seed(0)
    model = _model(name, dropout=0.0)
    inputs, labels = _batch()
    before = _loss(model, inputs, labels)
    initial = [w.numpy() for w in model.trainable_weights]
    _fit(model, inputs, labels, steps=60)
    after = _loss(model, inputs, labels)
    assert after <= 0.5 * before, (before, after)
    # Every weight moved: gradients reach the encoder (also through the memory that the
    # input-feeding loop captures), the bridge and the attention.
    moved = [not np.array_equal(w0, w.numpy()) for w0, w in zip(initial, model.trainable_weights)]
    assert all(moved), [w.path for w, m in zip(model.trainable_weights, moved) if not m]


def test_mixed_bfloat16_trains_with_float32_logits():
    # The input-feeding model also ties its embeddings: both new float32 boundaries at once.
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        keras.utils.set_random_seed(0)
        model = _model("input_feeding")
        inputs, labels = _batch()
        history = _fit(model, inputs, labels, steps=3)
        logits = model(inputs, training=False)
        state, memory = model.encode(tf.constant(inputs["encoder_token_ids"]))
        step_logits, _ = model.decode_step(tf.fill([8], BOS), state, memory)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.decoder.embedding.compute_dtype == "bfloat16"
    assert logits.dtype == tf.float32 and step_logits.dtype == tf.float32
    assert np.isfinite(logits.numpy()).all() and np.isfinite(step_logits.numpy()).all()
    assert np.isfinite(history.history["loss"]).all()


def _keras_layers_step(decoder, tokens, states, memory, keys, mask):
    """The decoding step as Keras layer calls (what `Decoder.step` computes by hand)."""
    x = tf.gather(decoder.embedding.embeddings, tokens)
    new_states = []
    for i, rnn in enumerate(decoder.rnns):
        y, (h, c) = rnn.cell(x, states[2 * i : 2 * i + 2], training=False)
        x = y + x if (decoder.residual and i > 0) else y
        new_states += [h, c]
    context, _ = decoder.attention_layer.attend_rows(x, memory, keys, mask)
    attentional = decoder.attentional(tf.concat([context, x], -1))
    return decoder._project(attentional), new_states


def _float(x):
    return tf.cast(x, tf.float32).numpy()


# The step's gates come from one matmul on [x, h] with the activations fused into it (oneDNN
# applies them before rounding to bfloat16), the layers' from two matmuls and separate
# activations: float32 rounds differently; bfloat16 differs by up to a rounding of its own.
STEP_TOLERANCES = {
    "float32": dict(rtol=1e-5, atol=1e-6),
    "mixed_bfloat16": dict(rtol=2**-7, atol=2**-12),
}


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])
@pytest.mark.parametrize("name", ["tied_unidirectional", "residual_deep"])
def test_decoding_step_on_weights_read_once_equals_the_keras_layers(name, precision):
    tolerance = STEP_TOLERANCES[precision]
    keras.mixed_precision.set_global_policy(precision)
    try:
        model = _model(name)
        inputs, _ = _batch()
        model(inputs)
        state, memory = model.encode(tf.constant(inputs["encoder_token_ids"]))
        step = model.decode_step_fn()
        expected_state = got_state = state
        for t in range(3):
            tokens = tf.constant(inputs["decoder_token_ids"][:, t])
            expected, expected_state = _keras_layers_step(
                model.decoder,
                tokens,
                expected_state,
                memory["memory"],
                memory["keys"],
                memory["mask"],
            )
            got, got_state = step(tokens, got_state, memory)
            np.testing.assert_allclose(got.numpy(), expected.numpy(), **tolerance)
            for g, e in zip(got_state, expected_state):
                np.testing.assert_allclose(_float(g), _float(e), **tolerance)
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("name", ["tied_unidirectional", "residual_deep"])
def test_step_logits_padded_to_a_multiple_are_minus_inf_past_the_vocabulary(name):
    model = _model(name)
    inputs, _ = _batch()
    model(inputs)
    state, memory = model.encode(tf.constant(inputs["encoder_token_ids"]))
    tokens = tf.constant(inputs["decoder_token_ids"][:, 0])
    padded, _ = model.decode_step_fn(vocabulary_multiple=16)(tokens, state, memory)
    plain, _ = model.decode_step_fn()(tokens, state, memory)
    assert plain.shape[-1] == VOCAB and padded.shape[-1] == 32
    assert np.isneginf(padded.numpy()[:, VOCAB:]).all()
    np.testing.assert_allclose(padded.numpy()[:, :VOCAB], plain.numpy(), rtol=1e-5, atol=1e-6)


def _while_bodies(graph):
    for op in graph.get_operations():
        for attr in ("body", "then_branch", "else_branch"):
            if attr in op.node_def.attr:
                function = graph._get_function(op.get_attr(attr).name)
                if attr == "body":
                    yield function.graph
                yield from _while_bodies(function.graph)


def test_beam_search_reads_no_variable_inside_its_loop():
    model = _model("tied_unidirectional")  # general attention: no weights of its own a step
    inputs, _ = _batch()
    model(inputs)

    @tf.function(input_signature=[tf.TensorSpec([None, 6], tf.int32)])
    def translate(source):
        state, memory = model.encode(source)
        return beam_search(
            model.decode_step_fn(),
            state,
            memory,
            beam_size=3,
            alpha=0.6,
            n_best=1,
            bos_id=BOS,
            eos_id=EOS,
            max_lengths=tf.fill([tf.shape(source)[0]], 6),
        )

    bodies = list(_while_bodies(translate.get_concrete_function().graph))
    assert bodies, "no while loop found"
    reads = [
        op.name for body in bodies for op in body.get_operations() if op.type == "ReadVariableOp"
    ]
    assert not reads, reads
