"""LSTM decoder with global attention: teacher-forced over a whole sequence, or one step."""

import keras
from keras import ops

from seq2seq import attention as attention_lib


@keras.saving.register_keras_serializable(package="seq2seq")
class Decoder(keras.layers.Layer):
    """Stacked LSTMs, attention over the encoder outputs, an attentional layer and the logits.

    Training runs each LSTM once over the whole target (one cuDNN call per layer, no per-step
    loop): there is no input feeding. `step()` runs the same weights one token at a time through
    the LSTM cells, for greedy and beam search.

    Args:
        vocabulary_size: target vocabulary size (id 0 is padding).
        embedding_dim: embedding size.
        units: LSTM units (also the attentional layer's size).
        num_layers: number of stacked LSTM layers.
        attention: a name registered in `seq2seq.attention.ATTENTIONS` (Luong 2015 "general").
        dropout: dropout on embeddings, between layers and on the attentional vector.
        residual: add each layer's input to its output from the second layer on.

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
        # === Layers ===
        self.embedding = keras.layers.Embedding(
            vocabulary_size, embedding_dim, mask_zero=True, name="embedding"
        )
        self.dropout_layer = keras.layers.Dropout(dropout)
        self.rnns = [
            keras.layers.LSTM(units, return_sequences=True, name=f"lstm_{i}")
            for i in range(num_layers)
        ]
        self.attention_layer = attention_lib.get(attention, units, name="attention")
        self.attentional = keras.layers.Dense(
            units, activation="tanh", use_bias=False, name="attentional"
        )
        self.output_projection = keras.layers.Dense(
            vocabulary_size, dtype="float32", name="output_projection"
        )

    def lstm_layers(self):
        return list(self.rnns)

    def call(self, token_ids, initial_states, memory, memory_mask, training=None):
        mask = ops.not_equal(token_ids, 0)
        x = self.dropout_layer(self.embedding(token_ids), training=training)
        for i, rnn in enumerate(self.rnns):
            x_in = x
            if i > 0:
                x = self.dropout_layer(x, training=training)
            state = initial_states[2 * i : 2 * i + 2]
            x = rnn(x, mask=mask, initial_state=state, training=training)
            if self.residual and i > 0:
                x = x + x_in
        keys = self.attention_layer.project_keys(memory)
        return self._attend_and_project(x, memory, keys, memory_mask, training)

    def _attend_and_project(self, query, memory, keys, memory_mask, training):
        context, weights = self.attention_layer(query, memory, keys, memory_mask)
        attentional = self.attentional(ops.concatenate([context, query], -1))
        attentional = self.dropout_layer(attentional, training=training)
        return self.output_projection(attentional), weights

    def step(self, token_ids, states, memory, keys, memory_mask):
        """One decoding step: (batch,) ids and flat states -> (batch, V) logits, new states."""
        # A plain lookup: the layer would attach a padding mask that the cells cannot take.
        x = ops.take(self.embedding.embeddings, token_ids, axis=0)  # (batch, embedding_dim)
        new_states = []
        for i, rnn in enumerate(self.rnns):
            y, (h, c) = rnn.cell(x, states[2 * i : 2 * i + 2], training=False)
            x = y + x if (self.residual and i > 0) else y
            new_states += [h, c]
        logits, weights = self._attend_and_project(
            ops.expand_dims(x, 1), memory, keys, memory_mask, training=False
        )
        return logits[:, 0, :], new_states, weights[:, 0, :]

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
        }
