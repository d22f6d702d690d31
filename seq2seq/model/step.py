"""The step function of decoding, and the weights it runs on, read once a search.

Searches (`seq2seq.inference`) talk to a model only through

    step(tokens, state, memory) -> (logits, new_state)

- `tokens`: int32 `(N,)`, the previous token of each hypothesis (BOS at the first step).
- `state`: nested structure of tensors with leading dim `N` that changes every step.
- `memory`: nested structure of tensors with leading dim `B`, one row per sentence, that never
  changes. `N` is a multiple of `B`: the `N / B` consecutive rows `b*K .. b*K+K-1` belong to
  sentence `b` and share its memory row, which is never tiled.
- `logits`: float32 `(N, V)`, `NEG_INF` for tokens that cannot come (a step may pad `V` with
  them to a multiple the search asks for, so that the search need not pad at every step).

`DecodingWeights` are the translator's decoder weights as one step uses them, read and cast to
their compute dtypes once, outside the search loop: TensorFlow does not move reads and casts of
variables out of a `tf.while_loop`, and under mixed precision they cost a beam step dearly.
"""

from dataclasses import dataclass

import tensorflow as tf
from keras import ops

NEG_INF = float("-inf")  # the logit of a token that cannot come


@dataclass(frozen=True)
class GateWeights:
    """An LSTM cell's weights for `lstm_step`: input and recurrent kernels stacked (one matmul on
    `[x, h]`), the i, f and o gates' columns apart from the candidate's."""

    ifo_kernel: tf.Tensor  # (input + units, 3 * units)
    ifo_bias: tf.Tensor  # (3 * units,)
    candidate_kernel: tf.Tensor  # (input + units, units)
    candidate_bias: tf.Tensor  # (units,)

    @classmethod
    def of_cell(cls, cell, dtype):
        """The weights of a `keras.layers.LSTMCell`, cast to `dtype`."""
        kernel = ops.cast(ops.concatenate([cell.kernel, cell.recurrent_kernel], 0), dtype)
        bias = ops.cast(cell.bias, dtype)
        units = cell.units
        ifo = [slice(0, 2 * units), slice(3 * units, 4 * units)]  # Keras's order: i, f, c, o
        candidate = slice(2 * units, 3 * units)
        return cls(
            ops.concatenate([kernel[:, part] for part in ifo], 1),
            ops.concatenate([bias[part] for part in ifo], 0),
            kernel[:, candidate],
            bias[candidate],
        )


@dataclass(frozen=True)
class DecodingWeights:
    """Everything a decoder step reads, in the dtypes it computes with."""

    embeddings: tf.Tensor  # (V, embedding_dim)
    lstms: tuple[GateWeights, ...]
    attentional: tf.Tensor  # (memory_dim + units, units)
    projection_kernel: tf.Tensor  # (units, V'), V' >= V: see `pad_projection`
    projection_bias: tf.Tensor  # (V',)


def lstm_step(x, h, c, gates: GateWeights):
    """`keras.layers.LSTMCell` (tanh and sigmoid) on `GateWeights`: the new (h, c).

    Each activation follows its matmul and bias directly, which oneDNN computes as one operation
    (its fused matmul applies the sigmoid or tanh to the float32 sums before rounding them to
    bfloat16), instead of a dozen element-wise operations.
    """
    xh = ops.concatenate([x, h], -1)
    ifo = tf.sigmoid(tf.nn.bias_add(tf.matmul(xh, gates.ifo_kernel), gates.ifo_bias))
    candidate = tf.matmul(xh, gates.candidate_kernel)
    candidate = tf.tanh(tf.nn.bias_add(candidate, gates.candidate_bias))
    i, f, o = tf.split(ifo, 3, axis=1)
    c = f * c + i * candidate
    return o * tf.tanh(c), c


def pad_projection(kernel, bias, multiple):
    """`kernel` `(dim, V)` and `bias` `(V,)` with zero columns and `NEG_INF` biases appended up
    to a multiple of `multiple` columns: logits for that many tokens, the extra ones never
    chosen."""
    extra = -kernel.shape[-1] % multiple
    if not extra:
        return kernel, bias
    bias = ops.pad(bias, [[0, extra]], constant_values=NEG_INF)
    return ops.pad(kernel, [[0, 0], [0, extra]]), bias
