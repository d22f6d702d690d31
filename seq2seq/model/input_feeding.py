"""Luong input feeding: one decoder step as a Keras RNN cell.

With input feeding (Luong et al., 2015, section 3.3) the attentional vector of the previous step,
h~_{t-1} = tanh(W_c [c_{t-1}; h_{t-1}]), is concatenated to the target embedding at step t, so the
LSTMs see which source words were already attended to. Step t then needs the attention of step
t-1: the decoder can no longer run each LSTM over the whole target in one call and becomes a
per-step loop (`keras.layers.RNN` over this cell, a `tf.while_loop`). That is slower than the
default decoder and never cuDNN-fused on a GPU.

How the encoder outputs reach the cell: Keras 3's `RNN.call` has no `constants=` argument, and
its inputs must be one (batch, time, features) tensor. So the decoder binds the memory to the cell
for the duration of the RNN call (`with cell.attending(memory, keys, mask): rnn(...)`), and the
loop body captures those tensors: this works eagerly, inside `tf.function` and `model.fit`, and
the gradients reach the encoder through the capture. The binding is per thread, because
tf.distribute's MirroredStrategy traces each replica in its own thread. Decoding does not use
this cell: `Decoder.step` runs the same weights one step at a time, the memory as arguments.
"""

import contextlib
import functools
import threading

import keras
from keras import ops

from seq2seq.model import attention as attention_lib
from seq2seq.model.stacking import stack_layers

# Per thread: {id(cell): (memory, keys, memory_mask)} while `InputFeedingCell.attending` is open.
_BOUND = threading.local()


def _bound_memory():
    if not hasattr(_BOUND, "by_cell"):
        _BOUND.by_cell = {}
    return _BOUND.by_cell


@keras.saving.register_keras_serializable(package="seq2seq")
class InputFeedingCell(keras.layers.Layer):
    """Stacked LSTM cells, global attention and the attentional layer, one target step at a time.

    Slower than the default decoder: it runs as a per-step while loop, and its LSTM cells are
    never cuDNN-fused (they are `keras.layers.LSTMCell`s, not `keras.layers.LSTM` layers).

    Args:
        units: LSTM units, also the attentional vector's size.
        num_layers: number of stacked LSTM cells.
        attention: a name registered in `seq2seq.attention.ATTENTIONS`.
        dropout: dropout between layers and on the attentional vector (fresh mask each step).
        residual: add each layer's input to its output from the second layer on.

    Call arguments (inside `attending(memory, keys, memory_mask)`):
        inputs: (batch, embedding_dim) target embedding of this step.
        states: flat `[h0, c0, ..., h_{L-1}, c_{L-1}, h~]`, each (batch, units); h~ is the
            previous attentional vector (zeros before the first step).
        training: dropout on or off.

    Returns:
        (batch, 2 * units): the attentional vector h~_t and the top LSTM output h_t (the
        attention query) concatenated, and the new flat states.
    """

    def __init__(
        self, units, num_layers, attention="general", dropout=0.0, residual=False, **kwargs
    ):
        super().__init__(**kwargs)
        self.units = units
        self.num_layers = num_layers
        self.attention = attention
        self.dropout = dropout
        self.residual = residual
        self.state_size = [units] * (2 * num_layers + 1)
        self.output_size = 2 * units
        # === Layers ===
        self.cells = [
            keras.layers.LSTMCell(units, name=f"lstm_cell_{i}") for i in range(num_layers)
        ]
        self.dropout_layer = keras.layers.Dropout(dropout)
        self.attention_layer = attention_lib.get(attention, units, name="attention")
        self.attentional = keras.layers.Dense(
            units, activation="tanh", use_bias=False, name="attentional"
        )

    def build(self, input_shape):
        # Input feeding widens the first cell's input by the attentional vector.
        for i, cell in enumerate(self.cells):
            cell.build((input_shape[0], (input_shape[-1] if i == 0 else 0) + self.units))

    @contextlib.contextmanager
    def attending(self, memory, keys, memory_mask):
        """Binds the encoder outputs to `call` (in this thread) while the RNN runs over the cell."""
        bound = _bound_memory()
        previous = bound.get(id(self))
        bound[id(self)] = (memory, keys, memory_mask)
        try:
            yield self
        finally:
            if previous is None:
                del bound[id(self)]
            else:
                bound[id(self)] = previous

    def call(self, inputs, states, training=None):
        attended = _bound_memory().get(id(self))
        if attended is None:
            raise RuntimeError("InputFeedingCell must run inside `with cell.attending(...)`")
        memory, keys, memory_mask = attended
        x = ops.concatenate([inputs, states[-1]], -1)
        layers = [
            functools.partial(_run_cell, cell, states[2 * i : 2 * i + 2], training)
            for i, cell in enumerate(self.cells)
        ]
        x, cell_states = stack_layers(
            x, layers, residual=self.residual, dropout=self.dropout_layer, training=training
        )
        context, _ = self.attention_layer.attend_rows(x, memory, keys, memory_mask)
        attentional = self.attentional(ops.concatenate([context, x], -1))
        attentional = self.dropout_layer(attentional, training=training)
        new_states = [s for pair in cell_states for s in pair] + [attentional]
        return ops.concatenate([attentional, x], -1), new_states

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "num_layers": self.num_layers,
            "attention": self.attention,
            "dropout": self.dropout,
            "residual": self.residual,
        }


def _run_cell(cell, state, training, x):
    y, (h, c) = cell(x, state, training=training)
    return y, (h, c)
