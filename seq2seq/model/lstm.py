"""keras.layers.LSTM with a faster loop where cuDNN is not available.

On a GPU the layer is exactly Keras's: the fused cuDNN kernel. Elsewhere Keras runs a generic
`tf.while_loop` whose every step also computes that step's input projection and whose gradient
is TensorFlow's automatic differentiation of the loop (about three times the forward time).
No maintained library offers a fused CPU LSTM for Keras 3 (TensorFlow's `BlockLSTM` kernels
are documented as "not optimized for performance"), so this module writes the loop by hand the
way cuDNN organises it:

- the input projection x @ W + b of every time step is one large matmul before the loop;
- each step does only h @ U and the gate arithmetic;
- the gradient is a hand-written backward loop that also does only dz @ U^T per step, and the
  weight gradient dU is one large matmul after it.

In training, each step's gate arithmetic is one compiled op forward and one backward
(`seq2seq.fused_ops`) where it can be built, instead of a dozen TensorFlow ops; inference
(and so every export) uses TensorFlow's ops only.

The results are those of the cuDNN path: zeros at padded output steps, the final state taken
at each sequence's last real step, `go_backwards` reversing each sequence within its length.
"""

import keras
import tensorflow as tf
from keras import ops

from seq2seq.model import fused_ops


def _gpu_available():
    return bool(tf.config.list_logical_devices("GPU"))


def _split_activations(z, c):
    i, f, g, o = tf.split(z, 4, axis=-1)  # Keras's gate order: input, forget, cell, output
    i, f, o, g = tf.sigmoid(i), tf.sigmoid(f), tf.sigmoid(o), tf.tanh(g)
    return i, f, g, o, f * c + i * g


@tf.custom_gradient
def lstm_recurrence(projected, recurrent_kernel, h0, c0):
    """The LSTM recurrence over precomputed input projections.

    Args:
        projected: (time, batch, 4*units) x_t @ W + b for every step, time-major.
        recurrent_kernel: (units, 4*units) U.
        h0, c0: (batch, units) initial states.

    Returns:
        hs, cs: (time, batch, units) hidden and cell states after every step.
    """
    steps = tf.shape(projected)[0]
    arrays = [tf.TensorArray(projected.dtype, size=steps) for _ in range(7)]

    def step(t, h, c, *arrays):
        i, f, g, o, c = _split_activations(projected[t] + tf.matmul(h, recurrent_kernel), c)
        tanh_c = tf.tanh(c)
        h = o * tanh_c
        # Each gate in its own array: no per-step concatenation forward, no split backward.
        values = (h, c, tanh_c, i, f, g, o)
        return t + 1, h, c, *(a.write(t, v) for a, v in zip(arrays, values))

    _, _, _, *arrays = tf.while_loop(lambda t, *_: t < steps, step, (0, h0, c0, *arrays))
    hs, cs, *gates = (a.stack() for a in arrays)  # gates: tanh(c), i, f, g, o

    def gradient(d_hs, d_cs):
        return _recurrence_gradient(d_hs, d_cs, hs, cs, gates, recurrent_kernel, h0, c0)

    return (hs, cs), gradient


def _recurrence_gradient(d_hs, d_cs, hs, cs, gates, recurrent_kernel, h0, c0):
    c_prev = tf.concat([c0[None], cs[:-1]], 0)

    def step(t, dh_next, dc_next, d_zs):
        tanh_c, i, f, g, o = (gate[t] for gate in gates)
        dh = d_hs[t] + dh_next
        dc = d_cs[t] + dc_next + dh * o * (1 - tanh_c * tanh_c)
        dz = tf.concat(
            [
                dc * g * i * (1 - i),
                dc * c_prev[t] * f * (1 - f),
                dc * i * (1 - g * g),
                dh * tanh_c * o * (1 - o),
            ],
            -1,
        )
        return t - 1, tf.matmul(dz, recurrent_kernel, transpose_b=True), dc * f, d_zs.write(t, dz)

    return _backward_loop(step, hs, h0, c0)


@tf.custom_gradient
def fused_lstm_recurrence(projected, recurrent_kernel, h0, c0):
    """`lstm_recurrence` with each step's gate arithmetic in one op of `fused_ops.load()`
    (forward and backward), computed in float32 whatever the inputs' dtype."""
    cell_ops = fused_ops.load()
    steps = tf.shape(projected)[0]
    arrays = [tf.TensorArray(projected.dtype, size=steps) for _ in range(4)]

    def step(t, h, c, *arrays):
        values = cell_ops.seq2seq_lstm_cell(projected[t], tf.matmul(h, recurrent_kernel), c)
        h, c = values[:2]  # then the activated gates (batch, 4*units) and tanh(c)
        return t + 1, h, c, *(a.write(t, v) for a, v in zip(arrays, values))

    _, _, _, *arrays = tf.while_loop(lambda t, *_: t < steps, step, (0, h0, c0, *arrays))
    hs, cs, gates, tanh_cs = (a.stack() for a in arrays)

    def gradient(d_hs, d_cs):
        c_prev = tf.concat([c0[None], cs[:-1]], 0)

        def step(t, dh_next, dc_next, d_zs):
            dz, dc = cell_ops.seq2seq_lstm_cell_grad(
                d_hs[t], dh_next, d_cs[t], dc_next, gates[t], tanh_cs[t], c_prev[t]
            )
            return t - 1, tf.matmul(dz, recurrent_kernel, transpose_b=True), dc, d_zs.write(t, dz)

        return _backward_loop(step, hs, h0, c0)

    return (hs, cs), gradient


def _backward_loop(step, hs, h0, c0):
    """Runs `step` from the last time step to the first; the recurrence's four gradients."""
    steps = tf.shape(hs)[0]
    d_zs = tf.TensorArray(hs.dtype, size=steps)
    initial = (steps - 1, tf.zeros_like(h0), tf.zeros_like(c0), d_zs)
    _, dh0, dc0, d_zs = tf.while_loop(lambda t, *_: t >= 0, step, initial)
    d_zs = d_zs.stack()  # (time, batch, 4*units): also the gradient of `projected`
    h_prev = tf.concat([h0[None], hs[:-1]], 0)
    d_kernel = tf.einsum("tbh,tbg->hg", h_prev, d_zs)  # one matmul over all steps
    return d_zs, d_kernel, dh0, dc0


def lstm_sequence(
    inputs,
    h0,
    c0,
    lengths,
    kernel,
    recurrent_kernel,
    bias,
    go_backwards,
    recurrence=lstm_recurrence,
):
    """A whole LSTM layer: inputs (batch, time, features) -> last output, outputs, [h, c].

    `lengths` (batch,) are the real steps of each right-padded sequence. As cuDNN does, padded
    outputs are zero, the final states are those after each sequence's last real step, and
    `go_backwards` runs each sequence backwards within its length and returns the outputs in
    reversed time order (as Keras's backward layers do). `recurrence` is `lstm_recurrence` or
    `fused_lstm_recurrence`.
    """
    x = tf.transpose(inputs, (1, 0, 2))  # (time, batch, features)
    if go_backwards:
        x = tf.reverse_sequence(x, lengths, seq_axis=0, batch_axis=1)
    hs, cs = recurrence(tf.einsum("tbf,fg->tbg", x, kernel) + bias, recurrent_kernel, h0, c0)
    outputs, h, c = _finish_direction(hs, cs, lengths, h0, c0, go_backwards)
    if go_backwards:
        outputs = tf.reverse(outputs, [0])
    return h, tf.transpose(outputs, (1, 0, 2)), [h, c]


def _finish_direction(hs, cs, lengths, h0, c0, go_backwards):
    """Zeros at padding, the final state at each sequence's last real step, and backward
    outputs put back at the positions they belong to."""
    steps = tf.shape(hs)[0]
    valid = tf.sequence_mask(lengths, steps, dtype=hs.dtype)  # (batch, time)
    hs = hs * tf.transpose(valid)[:, :, None]
    last = tf.stack([tf.maximum(lengths - 1, 0), tf.range(tf.shape(lengths)[0])], 1)
    started = (lengths > 0)[:, None]
    h = tf.where(started, tf.gather_nd(hs, last), h0)
    c = tf.where(started, tf.gather_nd(cs, last), c0)
    if go_backwards:
        hs = tf.reverse_sequence(hs, lengths, seq_axis=0, batch_axis=1)
    return hs, h, c


@keras.saving.register_keras_serializable(package="seq2seq")
class LSTM(keras.layers.LSTM):
    """`keras.layers.LSTM`, cuDNN-fused on a GPU, and `lstm_sequence` elsewhere.

    Takes exactly Keras's arguments. The fast loop is used when the configuration is the
    cuDNN one (tanh, sigmoid, biases, no recurrent dropout, no unrolling) and no GPU is
    visible, or `use_cudnn=False` (as when exporting); anything else runs Keras's own loop.
    """

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if not self._fast_loop_applies():
            return super().inner_loop(sequences, initial_state, mask, training=training)
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if training and self.dropout:  # one input mask per sequence, as on the cuDNN path
            sequences = sequences * ops.expand_dims(self.cell.get_dropout_mask(sequences[:, 0]), 1)
        if mask is None:
            lengths = tf.fill([tf.shape(sequences)[0]], tf.shape(sequences)[1])
        else:
            lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
        dtype = sequences.dtype
        weights = [ops.cast(w, dtype) for w in (self.cell.kernel, self.cell.recurrent_kernel)]
        h0, c0 = (ops.cast(s, dtype) for s in initial_state)
        fused = training and fused_ops.load() is not None
        return lstm_sequence(
            sequences,
            h0,
            c0,
            lengths,
            *weights,
            ops.cast(self.cell.bias, dtype),
            self.go_backwards,
            fused_lstm_recurrence if fused else lstm_recurrence,
        )

    def _fast_loop_applies(self):
        cell = self.cell
        standard = (
            cell.activation is keras.activations.tanh
            and cell.recurrent_activation is keras.activations.sigmoid
            and cell.use_bias
            and not cell.recurrent_dropout
            and not self.unroll
        )
        cudnn_runs = self.use_cudnn in ("auto", True) and _gpu_available()
        return standard and not cudnn_runs
