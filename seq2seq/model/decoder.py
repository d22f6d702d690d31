"""LSTM decoder with global attention: teacher-forced over a whole sequence, or one step.

Options: Luong input feeding (`seq2seq.model.input_feeding`) and tied input/output embeddings.
"""

import functools

import keras
import tensorflow as tf
from keras import ops

from seq2seq.model import attention as attention_lib
from seq2seq.model.input_feeding import InputFeedingCell
from seq2seq.model.lstm import LSTM
from seq2seq.model.stacking import stack_layers
from seq2seq.model.step import DecodingWeights, GateWeights, lstm_step, pad_projection


def projection_dtype():
    """The output projection's dtype policy: float32, but bfloat16 compute under
    mixed_bfloat16 (bfloat16 has float32's range, so its logits cannot overflow as float16's
    can; the matmul is the largest of a training step). The logits are float32 either way."""
    policy = keras.mixed_precision.dtype_policy()
    return policy.name if policy.compute_dtype == "bfloat16" else "float32"


@keras.saving.register_keras_serializable(package="seq2seq")
class TiedOutputProjection(keras.layers.Layer):
    """Logits from the target embedding matrix: attentional @ E^T + bias (Press & Wolf, 2017).

    Owns only the bias; the matrix E is the decoder's embedding, passed at call time, so the
    embedding and the output projection are one weight.

    Args:
        vocabulary_size: target vocabulary size (the number of logits).

    Call arguments:
        inputs: (..., dim) attentional vectors.
        embeddings: (vocabulary_size, dim) the target embedding matrix.

    Returns:
        float32 logits (..., vocabulary_size), computed in the layer's compute dtype.
    """

    def __init__(self, vocabulary_size, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size

    def build(self, inputs_shape, embeddings_shape=None):
        self.bias = self.add_weight(
            name="bias", shape=(self.vocabulary_size,), initializer="zeros", autocast=False
        )

    def call(self, inputs, embeddings):
        dtype = self.compute_dtype
        logits = ops.matmul(ops.cast(inputs, dtype), ops.transpose(ops.cast(embeddings, dtype)))
        return ops.cast(logits, "float32") + self.bias

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size}


@keras.saving.register_keras_serializable(package="seq2seq")
class Decoder(keras.layers.Layer):
    """Stacked LSTMs, attention over the encoder outputs, an attentional layer and the logits.

    By default (no input feeding) training runs each LSTM once over the whole target (one cuDNN
    call per layer, no per-step loop). With `input_feeding=True` the previous attentional vector
    is concatenated to each step's embedding (Luong et al., 2015): the LSTMs then run as a
    per-step `keras.layers.RNN` over an `InputFeedingCell`, slower and never cuDNN-fused.
    `step()` runs the same weights one token at a time, for the searches, with or without input
    feeding, on `decoding_weights()`.

    Args:
        vocabulary_size: target vocabulary size (id 0 is padding).
        embedding_dim: embedding size.
        units: LSTM units (also the attentional layer's size).
        num_layers: number of stacked LSTM layers.
        attention: a name registered in `seq2seq.attention.ATTENTIONS` (Luong 2015 "general").
        dropout: dropout on embeddings, between layers and on the attentional vector.
        residual: add each layer's input to its output from the second layer on.
        input_feeding: feed the previous attentional vector into the first LSTM (see above).
        tie_embeddings: the output projection is the embedding matrix (logits = h~ E^T + b);
            needs embedding_dim == units.
        embedding: an Embedding layer to use (the encoder's, shared), instead of a new one.

    Call arguments:
        token_ids: (batch, tgt_len) int32 decoder inputs (BOS + target), right-padded with 0.
        initial_states: per-layer `[h, c]` list, flattened: [h0, c0, h1, c1, ...].
        memory: (batch, src_len, memory_dim) encoder outputs; memory_mask (batch, src_len).

    Returns:
        float32 logits (batch, tgt_len, vocabulary_size) and attention weights
        (batch, tgt_len, src_len).
    """

    def __init__(
        self,
        vocabulary_size,
        embedding_dim,
        units,
        num_layers,
        attention="general",
        dropout=0.0,
        residual=False,
        input_feeding=False,
        tie_embeddings=False,
        embedding=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.units = units
        self.num_layers = num_layers
        self.attention = attention
        self.dropout = dropout
        self.residual = residual
        self.input_feeding = input_feeding
        self.tie_embeddings = tie_embeddings
        # === Layers ===
        self.embedding = embedding or keras.layers.Embedding(
            vocabulary_size, embedding_dim, mask_zero=True, name="embedding"
        )
        self.dropout_layer = keras.layers.Dropout(dropout)
        if input_feeding:
            self._make_input_feeding_layers()
        else:
            self._make_layers()
        if tie_embeddings:
            self.output_projection = TiedOutputProjection(
                vocabulary_size, dtype=projection_dtype(), name="output_projection"
            )
        else:
            self.output_projection = keras.layers.Dense(
                vocabulary_size, dtype=projection_dtype(), name="output_projection"
            )

    def _make_layers(self):
        self.rnns = [
            LSTM(self.units, return_sequences=True, name=f"lstm_{i}")
            for i in range(self.num_layers)
        ]
        self.attention_layer = attention_lib.get(self.attention, self.units, name="attention")
        self.attentional = keras.layers.Dense(
            self.units, activation="tanh", use_bias=False, name="attentional"
        )

    def _make_input_feeding_layers(self):
        self.cell = InputFeedingCell(
            self.units,
            self.num_layers,
            self.attention,
            self.dropout,
            self.residual,
            name="input_feeding_cell",
        )
        self.rnn = keras.layers.RNN(self.cell, return_sequences=True, name="input_feeding")
        self.rnns = []
        self.attention_layer = self.cell.attention_layer  # the same layer, for project_keys

    def lstm_layers(self):
        """The keras.layers.LSTM layers (none with input feeding: its cells are not cuDNN)."""
        return list(self.rnns)

    def initial_step_states(self, initial_states):
        """The flat state `step()` starts from: the LSTM states, plus h~_0 = 0 with feeding."""
        if not self.input_feeding:
            return list(initial_states)
        return [*initial_states, ops.zeros_like(initial_states[0])]

    def call(self, token_ids, initial_states, memory, memory_mask, training=None):
        mask = ops.not_equal(token_ids, 0)
        x = self.dropout_layer(self.embedding(token_ids), training=training)
        if self.input_feeding:
            return self._call_input_feeding(x, mask, initial_states, memory, memory_mask, training)
        layers = [
            functools.partial(self._run, rnn, mask, initial_states[2 * i : 2 * i + 2], training)
            for i, rnn in enumerate(self.rnns)
        ]
        x, _ = stack_layers(
            x, layers, residual=self.residual, dropout=self.dropout_layer, training=training
        )
        keys = self.attention_layer.project_keys(memory)
        return self._attend_and_project(x, memory, keys, memory_mask, training)

    @staticmethod
    def _run(rnn, mask, initial_state, training, x):
        return rnn(x, mask=mask, initial_state=initial_state, training=training), None

    def _call_input_feeding(self, x, mask, initial_states, memory, memory_mask, training):
        keys = self.attention_layer.project_keys(memory)
        states = self.initial_step_states(initial_states)
        with self.cell.attending(memory, keys, memory_mask):
            outputs = self.rnn(x, initial_state=states, mask=mask, training=training)
        attentional, query = outputs[..., : self.units], outputs[..., self.units :]
        # The weights the loop used, recomputed from its queries in one batched call outside the
        # loop (for forward_with_attention; Translator.call drops them).
        _, weights = self.attention_layer(query, memory, keys, memory_mask)
        return self._project(attentional), weights

    def _attend_and_project(self, query, memory, keys, memory_mask, training):
        context, weights = self.attention_layer(query, memory, keys, memory_mask)
        attentional = self.attentional(ops.concatenate([context, query], -1))
        attentional = self.dropout_layer(attentional, training=training)
        return self._project(attentional), weights

    def _project(self, attentional):
        if self.tie_embeddings:
            return self.output_projection(attentional, self.embedding.embeddings)
        return ops.cast(self.output_projection(attentional), "float32")

    def step(self, token_ids, states, memory, keys, memory_mask, weights: DecodingWeights):
        """One decoding step: (rows,) ids and flat states -> (rows, V') logits, new states and
        attention weights (rows, src_len).

        `rows` is a multiple of the memory's batch (`Attention.attend_rows`); the states are
        `initial_step_states`'s; `weights` are `decoding_weights()`, read once outside the loop.
        """
        # A plain lookup: the layer would attach a padding mask that the step cannot take.
        x = ops.cast(ops.take(weights.embeddings, token_ids, axis=0), self.compute_dtype)
        if self.input_feeding:
            x = ops.concatenate([x, ops.cast(states[-1], x.dtype)], -1)
        layers = [
            functools.partial(_lstm_layer, gates, states[2 * i : 2 * i + 2])
            for i, gates in enumerate(weights.lstms)
        ]
        x, new_states = stack_layers(x, layers, residual=self.residual)
        new_states = [s for pair in new_states for s in pair]
        context, attention = self.attention_layer.attend_rows(x, memory, keys, memory_mask)
        attentional = ops.matmul(ops.concatenate([context, x], -1), weights.attentional)
        attentional = self._attentional_layer().activation(attentional)
        if self.input_feeding:
            new_states.append(attentional)
        return self._project_step(attentional, weights), new_states, attention

    def _project_step(self, attentional, weights):
        kernel, bias = weights.projection_kernel, weights.projection_bias
        logits = ops.matmul(ops.cast(attentional, kernel.dtype), kernel)
        if self.tie_embeddings:  # TiedOutputProjection: float32 logits, then its bias
            return ops.cast(logits, "float32") + bias
        return ops.cast(ops.add(logits, bias), "float32")

    def decoding_weights(self, vocabulary_multiple=1) -> DecodingWeights:
        """The weights `step` uses, read and cast to their compute dtypes, for a search to take
        once. With `vocabulary_multiple`, `step` returns logits for a multiple of that many
        tokens, those past the vocabulary at -inf (`pad_projection`)."""
        dtype = self.compute_dtype
        cells = self.cell.cells if self.input_feeding else [rnn.cell for rnn in self.rnns]
        projection_dtype = self.output_projection.compute_dtype
        if self.tie_embeddings:
            kernel = ops.transpose(ops.cast(self.embedding.embeddings, projection_dtype))
            bias = tf.identity(self.output_projection.bias)  # a read, here
        else:
            kernel = ops.cast(self.output_projection.kernel, projection_dtype)
            bias = ops.cast(self.output_projection.bias, projection_dtype)
        kernel, bias = pad_projection(kernel, bias, vocabulary_multiple)
        return DecodingWeights(
            embeddings=tf.identity(self.embedding.embeddings),
            lstms=tuple(GateWeights.of_cell(cell, dtype) for cell in cells),
            attentional=ops.cast(self._attentional_layer().kernel, dtype),
            projection_kernel=kernel,
            projection_bias=bias,
        )

    def _attentional_layer(self):
        return self.cell.attentional if self.input_feeding else self.attentional

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "embedding_dim": self.embedding_dim,
            "units": self.units,
            "num_layers": self.num_layers,
            "attention": self.attention,
            "dropout": self.dropout,
            "residual": self.residual,
            "input_feeding": self.input_feeding,
            "tie_embeddings": self.tie_embeddings,
        }


def _lstm_layer(gates, state, x):
    h, c = (ops.cast(s, x.dtype) for s in state)
    h, c = lstm_step(x, h, c, gates)
    return h, (h, c)
