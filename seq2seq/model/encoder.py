"""Stacked (bi)directional LSTM encoder."""

import functools

import keras
from keras import ops

from seq2seq.model.lstm import LSTM
from seq2seq.model.stacking import stack_layers


@keras.saving.register_keras_serializable(package="seq2seq")
class Encoder(keras.layers.Layer):
    """Embeddings followed by stacked LSTMs, every one cuDNN-eligible.

    Args:
        vocabulary_size: source vocabulary size (id 0 is padding).
        embedding_dim: embedding size.
        units: LSTM units per direction.
        num_layers: number of stacked LSTM layers.
        bidirectional: run each layer in both directions and concatenate them.
        dropout: dropout on the embeddings and between layers (never recurrent dropout).
        residual: add each layer's input to its output from the second layer on.
        word_dropout: in training, the probability that a source word's embedding is zeroed as
            a whole (Sennrich et al., 2016); the others are scaled by 1 / (1 - word_dropout).

    Call arguments:
        token_ids: (batch, src_len) int32, right-padded with 0.

    Returns:
        outputs (batch, src_len, output_dim), per-layer final states `[(h, c), ...]` each of
        size output_dim, and the source mask (batch, src_len). output_dim is 2*units when
        bidirectional, else units.
    """

    def __init__(
        self,
        vocabulary_size,
        embedding_dim,
        units,
        num_layers,
        bidirectional=True,
        dropout=0.0,
        residual=False,
        word_dropout=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.units = units
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.residual = residual
        self.word_dropout = word_dropout
        self.output_dim = units * (2 if bidirectional else 1)
        # === Layers ===
        self.embedding = keras.layers.Embedding(
            vocabulary_size, embedding_dim, mask_zero=True, name="embedding"
        )
        if word_dropout:
            self.word_dropout_seed = keras.random.SeedGenerator(name="word_dropout_seed")
        self.dropout_layer = keras.layers.Dropout(dropout)
        self.rnns = [self._make_rnn(i) for i in range(num_layers)]

    def _make_rnn(self, index):
        lstm = LSTM(self.units, return_sequences=True, return_state=True, name=f"lstm_{index}")
        if self.bidirectional:
            return keras.layers.Bidirectional(lstm, name=f"bidirectional_{index}")
        return lstm

    def lstm_layers(self):
        """Every keras.layers.LSTM inside (both directions), for cuDNN checks and export."""
        if not self.bidirectional:
            return list(self.rnns)
        return [d for rnn in self.rnns for d in (rnn.forward_layer, rnn.backward_layer)]

    def call(self, token_ids, training=None):
        mask = ops.not_equal(token_ids, 0)
        x = self.embedding(token_ids)
        if training and self.word_dropout:
            x = self._drop_words(x)
        x = self.dropout_layer(x, training=training)
        layers = [functools.partial(self._run, rnn, mask, training) for rnn in self.rnns]
        x, states = stack_layers(
            x, layers, residual=self.residual, dropout=self.dropout_layer, training=training
        )  # (batch, src_len, output_dim)
        return x, states, mask

    def _drop_words(self, x):
        """Zeroes whole word embeddings (batch, src_len, dim) at random, rescaling the rest."""
        draws = keras.random.uniform(ops.shape(x)[:2], seed=self.word_dropout_seed)
        keep = ops.cast(draws >= self.word_dropout, x.dtype) / (1.0 - self.word_dropout)
        return x * keep[:, :, None]

    def _run(self, rnn, mask, training, x):
        outputs = rnn(x, mask=mask, training=training)
        return outputs[0], self._final_state(outputs[1:])

    def _final_state(self, states):
        if self.bidirectional:
            fh, fc, bh, bc = states
            return ops.concatenate([fh, bh], -1), ops.concatenate([fc, bc], -1)
        return tuple(states)

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "embedding_dim": self.embedding_dim,
            "units": self.units,
            "num_layers": self.num_layers,
            "bidirectional": self.bidirectional,
            "dropout": self.dropout,
            "residual": self.residual,
            "word_dropout": self.word_dropout,
        }
