"""Global attention over encoder outputs, chosen by name through `get()`.

Every attention splits into `project_keys(memory)`, computed once per source sentence (also
once per decoded sentence, not once per step), and `score(query, keys)`. Adding a type is one
class here plus one entry in `ATTENTIONS`; the decoder never switches on the name.

Dot-product attentions pad both lengths to a multiple of `shape_multiple` before their batched
matmuls; a decoding search pads its source once, in `Translator.encode` (`pad_source`).
TensorFlow's oneDNN CPU kernels build and keep one compiled kernel per input shape and thread
(up to 1,024 per kind), and these are the only matmuls whose shape holds both the target (or
the number of sentences left in a search) and the source length: without the padding, memory
grows with every new pair of lengths a process meets (docs/performance.md).
"""

import keras
from keras import ops

# The score of a masked source position: finite, so that a fully masked row (an empty source)
# gets uniform weights instead of NaN; its softmax weight is 0 next to any real position.
MASKED_SCORE = -1e9


class Attention(keras.layers.Layer):
    """Base class: masked softmax over source positions and the weighted sum of memory.

    Args:
        units: size of the projected keys (the decoder's hidden size).

    Call arguments:
        query: (batch, tgt_len, units) decoder outputs.
        memory: (batch, src_len, memory_dim) encoder outputs.
        keys: `project_keys(memory)`.
        memory_mask: (batch, src_len) bool, False at source padding (weight 0 there).

    Returns:
        context (batch, tgt_len, memory_dim) and weights (batch, tgt_len, src_len), float32
        softmax cast back to the compute dtype (safe under mixed precision).
    """

    shape_multiple = 1  # see the module docstring

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.supports_masking = True

    def project_keys(self, memory):
        return memory

    def score(self, query, keys):
        raise NotImplementedError

    def pad_source(self, memory, keys, memory_mask):
        """`memory`, `keys` and `memory_mask` padded on the source axis to `shape_multiple`;
        the mask is False at the padding, so it gets no weight."""
        if self.shape_multiple == 1:
            return memory, keys, memory_mask
        length, multiple = ops.shape(memory)[1], self.shape_multiple
        return tuple(_pad_axis_1(x, length, multiple) for x in (memory, keys, memory_mask))

    def attend_rows(self, queries, memory, keys, memory_mask):
        """One decoding step: (N, units) query rows -> context (N, memory_dim), weights (N, src).

        N is a multiple of the memory's batch B: consecutive groups of N / B rows share one
        memory row, which is never tiled (`seq2seq.model.step`). The group is the query time axis
        of `call`, so each step reads every memory row once, however many rows share it.
        """
        batch = ops.shape(memory)[0]
        grouped = ops.reshape(queries, (batch, -1, ops.shape(queries)[-1]))  # (B, N/B, units)
        # No padding here, at every step: the memory comes padded from `Translator.encode`, and
        # N/B takes one value a search.
        context, weights = self(grouped, memory, keys, memory_mask, pad_lengths=False)
        rows = ops.shape(queries)[0]
        return ops.reshape(context, (rows, -1)), ops.reshape(weights, (rows, -1))

    def call(self, query, memory, keys, memory_mask, pad_lengths=True):
        if not pad_lengths or self.shape_multiple == 1:
            return self._attend(query, memory, keys, memory_mask)
        tgt_len, src_len = ops.shape(query)[1], ops.shape(memory)[1]
        query = _pad_axis_1(query, tgt_len, self.shape_multiple)
        memory, keys, memory_mask = self.pad_source(memory, keys, memory_mask)
        context, weights = self._attend(query, memory, keys, memory_mask)
        return context[:, :tgt_len], weights[:, :tgt_len, :src_len]

    def _attend(self, query, memory, keys, memory_mask):
        scores = ops.cast(self.score(query, keys), "float32")  # (batch, tgt_len, src_len)
        scores = ops.where(ops.expand_dims(memory_mask, 1), scores, MASKED_SCORE)
        weights = ops.cast(ops.softmax(scores, axis=-1), memory.dtype)
        return ops.matmul(weights, memory), weights

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="seq2seq")
class DotAttention(Attention):
    """Luong et al. (2015) "dot": score = q . h_s (memory size must equal `units`)."""

    shape_multiple = 16

    def score(self, query, keys):
        return ops.matmul(query, ops.transpose(keys, (0, 2, 1)))


@keras.saving.register_keras_serializable(package="seq2seq")
class GeneralAttention(DotAttention):
    """Luong et al. (2015) "general": score = q . W h_s, with W applied once to the memory."""

    def __init__(self, units, **kwargs):
        super().__init__(units, **kwargs)
        self.key_projection = keras.layers.Dense(units, use_bias=False, name="key_projection")

    def project_keys(self, memory):
        return self.key_projection(memory)


@keras.saving.register_keras_serializable(package="seq2seq")
class AdditiveAttention(Attention):
    """Bahdanau et al. (2015) additive attention: score = v . tanh(W1 q + W2 h_s).

    Keras's own `AdditiveAttention` has no W1/W2, so they are here. With `normalize=True` the
    vector v is weight-normalised (v = g * v / |v|) and a bias is added inside the tanh, as in
    the normalized Bahdanau attention of tensorflow/nmt. Materialises (batch, tgt, src, units).
    """

    def __init__(self, units, normalize=False, **kwargs):
        super().__init__(units, **kwargs)
        self.normalize = normalize
        self.query_projection = keras.layers.Dense(units, use_bias=False, name="query_projection")
        self.key_projection = keras.layers.Dense(units, use_bias=False, name="key_projection")

    def build(self, query_shape, memory_shape, keys_shape=None, memory_mask_shape=None):
        self.v = self.add_weight(name="v", shape=(self.units,), initializer="glorot_uniform")
        if self.normalize:
            self.g = self.add_weight(name="g", shape=(), initializer="ones")
            self.b = self.add_weight(name="b", shape=(self.units,), initializer="zeros")

    def project_keys(self, memory):
        return self.key_projection(memory)

    def score(self, query, keys):
        hidden = ops.expand_dims(self.query_projection(query), 2) + ops.expand_dims(keys, 1)
        v = ops.cast(self.v, hidden.dtype)
        if self.normalize:
            v = ops.cast(self.g, hidden.dtype) * v / ops.sqrt(ops.sum(v * v))
            hidden = hidden + ops.cast(self.b, hidden.dtype)
        return ops.sum(v * ops.tanh(hidden), axis=-1)  # (batch, tgt_len, src_len)

    def get_config(self):
        return {**super().get_config(), "normalize": self.normalize}


def _pad_axis_1(x, length, multiple):
    """`x` with zeros (False for a mask) after its `length` entries on axis 1, up to a multiple."""
    pad = [[0, 0]] * len(x.shape)
    pad[1] = [0, (-length) % multiple]
    return ops.pad(x, pad, constant_values=False if x.dtype == "bool" else 0)


ATTENTIONS = {
    "dot": (DotAttention, {}),
    "general": (GeneralAttention, {}),
    "luong": (GeneralAttention, {}),
    "concat": (AdditiveAttention, {}),
    "bahdanau": (AdditiveAttention, {}),
    "bahdanau_normalized": (AdditiveAttention, {"normalize": True}),
}


def check_name(identifier):
    """Raises ValueError naming `model.attention` unless `identifier` is registered."""
    if identifier not in ATTENTIONS:
        raise ValueError(
            f"model.attention={identifier!r} is unknown; choose one of {sorted(ATTENTIONS)}"
        )


def get(identifier, units, **kwargs):
    """Builds the attention layer registered under the name `identifier`."""
    check_name(identifier)
    cls, defaults = ATTENTIONS[identifier]
    return cls(units, **{**defaults, **kwargs})
