"""The translator: encoder, bridge and attention decoder as one Keras model."""

import keras
import tensorflow as tf
from keras import ops

from seq2seq.model import attention as attention_lib
from seq2seq.model.decoder import Decoder
from seq2seq.model.encoder import Encoder

BRIDGES = ("copy", "zero", "dense")


def check_architecture(
    *, units, bidirectional, bridge, attention, tie_embeddings, embedding_dim, **_
):
    """Raises ValueError, naming the `model.*` keys, for settings that cannot go together."""
    if bidirectional and units % 2:
        raise ValueError(f"model.units={units} must be even with a bidirectional encoder")
    check_bridge(bridge)
    attention_lib.check_name(attention)
    if tie_embeddings and embedding_dim != units:
        raise ValueError(
            f"model.tie_embeddings=true needs model.embedding_dim ({embedding_dim}) equal to "
            f"model.units ({units}), the size of the attentional vector"
        )


def check_shared_embeddings(share_embeddings, source_vocabulary_size, target_vocabulary_size):
    """Raises ValueError unless shared embeddings have one vocabulary for both sides."""
    if share_embeddings and source_vocabulary_size != target_vocabulary_size:
        raise ValueError(
            f"model.share_embeddings=true needs one vocabulary for both sides (here "
            f"{source_vocabulary_size} source and {target_vocabulary_size} target ids): "
            "data.tokenizer.joint=true and data.tokenizer.restrict_vocabulary=false"
        )


def check_bridge(kind):
    """Raises ValueError naming `model.bridge` unless `kind` is one of `BRIDGES`."""
    if kind not in BRIDGES:
        raise ValueError(f"model.bridge={kind!r} is unknown; choose one of {list(BRIDGES)}")


def set_precision(precision):
    """Keras's global dtype policy, for the layers built next: "float32", "mixed_float16" or
    "mixed_bfloat16" (`trainer.precision`)."""
    keras.mixed_precision.set_global_policy(precision)


def build(source_vocabulary_size, target_vocabulary_size, **architecture):
    """A `Translator` with every weight created (`architecture`: `ModelConfig.architecture()`)."""
    model = Translator(source_vocabulary_size, target_vocabulary_size, **architecture)
    one = tf.ones((1, 2), tf.int32)
    model({"encoder_token_ids": one, "decoder_token_ids": one})
    return model


@keras.saving.register_keras_serializable(package="seq2seq")
class Bridge(keras.layers.Layer):
    """Maps the encoder's final per-layer states to the decoder's initial states.

    Args:
        kind: "copy" (decoder layer i starts from encoder layer i's states; sizes must match,
            missing encoder layers give zeros), "zero", or "dense" (a tanh projection of h and
            a linear projection of c, per decoder layer).
        units: decoder units.
        num_layers: decoder layers.
    """

    def __init__(self, kind, units, num_layers, **kwargs):
        super().__init__(**kwargs)
        check_bridge(kind)
        self.kind = kind
        self.units = units
        self.num_layers = num_layers
        if kind == "dense":
            self.projections = [
                (
                    keras.layers.Dense(units, activation="tanh", name=f"h_{i}"),
                    keras.layers.Dense(units, name=f"c_{i}"),
                )
                for i in range(num_layers)
            ]

    def call(self, encoder_states, batch_reference):
        zeros = ops.zeros((ops.shape(batch_reference)[0], self.units), batch_reference.dtype)
        flat = []
        for i in range(self.num_layers):
            source = encoder_states[min(i, len(encoder_states) - 1)]
            if self.kind == "zero" or (self.kind == "copy" and i >= len(encoder_states)):
                flat += [zeros, zeros]
            elif self.kind == "copy":
                flat += list(source)
            else:
                h_proj, c_proj = self.projections[i]
                flat += [h_proj(source[0]), c_proj(source[1])]
        return flat

    def get_config(self):
        return {
            **super().get_config(),
            "kind": self.kind,
            "units": self.units,
            "num_layers": self.num_layers,
        }


@keras.saving.register_keras_serializable(package="seq2seq")
class Translator(keras.Model):
    """LSTM encoder-decoder with attention (Luong et al., 2015, input feeding optional).

    Args:
        source_vocabulary_size, target_vocabulary_size: vocabulary sizes (0 is padding).
        embedding_dim: embedding size of both sides.
        units: decoder LSTM units; a bidirectional encoder gets units // 2 per direction.
        encoder_layers, decoder_layers: stacked LSTM layers.
        bidirectional: bidirectional encoder.
        attention: attention name (see `seq2seq.attention.get`).
        dropout: dropout rate (embeddings, between layers, attentional vector).
        bridge: "copy", "zero" or "dense" (see `Bridge`).
        residual: residual connections between stacked layers.
        input_feeding: Luong input feeding (see `Decoder`): slower, a per-step loop, no cuDNN.
        tie_embeddings: the target embedding is the output projection; needs
            embedding_dim == units.
        share_embeddings: the source and target embeddings are one matrix; needs one
            vocabulary for both sides (a joint SentencePiece model, unrestricted).
        source_word_dropout: in training, zero whole source word embeddings with this
            probability (Sennrich et al., 2016).

    Call arguments:
        inputs: {"encoder_token_ids": (batch, src_len), "decoder_token_ids": (batch, tgt_len)}.

    Returns:
        float32 logits (batch, tgt_len, target_vocabulary_size).
    """

    def __init__(
        self,
        source_vocabulary_size,
        target_vocabulary_size,
        embedding_dim,
        units,
        encoder_layers,
        decoder_layers,
        bidirectional=True,
        attention="general",
        dropout=0.0,
        bridge="copy",
        residual=False,
        input_feeding=False,
        tie_embeddings=False,
        share_embeddings=False,
        source_word_dropout=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_shared_embeddings(share_embeddings, source_vocabulary_size, target_vocabulary_size)
        check_architecture(
            units=units,
            bidirectional=bidirectional,
            bridge=bridge,
            attention=attention,
            tie_embeddings=tie_embeddings,
            embedding_dim=embedding_dim,
        )
        self.source_vocabulary_size = source_vocabulary_size
        self.target_vocabulary_size = target_vocabulary_size
        self.embedding_dim = embedding_dim
        self.units = units
        self.encoder_layers = encoder_layers
        self.decoder_layers = decoder_layers
        self.bidirectional = bidirectional
        self.attention = attention
        self.dropout = dropout
        self.bridge_kind = bridge
        self.residual = residual
        self.input_feeding = input_feeding
        self.tie_embeddings = tie_embeddings
        self.share_embeddings = share_embeddings
        self.source_word_dropout = source_word_dropout
        # === Layers ===
        encoder_units = units // 2 if bidirectional else units
        self.encoder = Encoder(
            source_vocabulary_size,
            embedding_dim,
            encoder_units,
            encoder_layers,
            bidirectional,
            dropout,
            residual,
            word_dropout=source_word_dropout,
            name="encoder",
        )
        self.bridge = Bridge(bridge, units, decoder_layers, name="bridge")
        self.gradient_norm_tracker = keras.metrics.Mean(name="gradient_norm")
        self.decoder = Decoder(
            target_vocabulary_size,
            embedding_dim,
            units,
            decoder_layers,
            attention,
            dropout,
            residual,
            input_feeding=input_feeding,
            tie_embeddings=tie_embeddings,
            embedding=self.encoder.embedding if share_embeddings else None,
            name="decoder",
        )

    def call(self, inputs, training=None):
        logits, _ = self.forward_with_attention(inputs, training=training)
        return logits

    def forward_with_attention(self, inputs, training=None):
        """Teacher-forced logits and attention weights (batch, tgt_len, src_len)."""
        memory, states, source_mask = self.encoder(inputs["encoder_token_ids"], training=training)
        initial = self.bridge(states, memory[:, 0, :])
        return self.decoder(
            inputs["decoder_token_ids"], initial, memory, source_mask, training=training
        )

    def lstm_layers(self):
        """The keras.layers.LSTM layers (input feeding's decoder cells are not among them)."""
        return self.encoder.lstm_layers() + self.decoder.lstm_layers()

    def compile(
        self, *args, gradient_clip_norm=None, accumulator=None, weight_average=None, **kwargs
    ):
        """Keras's compile; `gradient_clip_norm` clips the gradients to that global norm.

        `accumulator` (with `add(gradients, tokens) -> due` and `mean()`) makes one update of
        several batches; `weight_average` (with `update(step)`) hears of every update. Neither is
        a part of the model: they stay out of its weights files and its export.
        """
        super().compile(*args, **kwargs)
        self.gradient_clip_norm = gradient_clip_norm
        object.__setattr__(self, "accumulator", accumulator)  # untracked: see above
        object.__setattr__(self, "weight_average", weight_average)

    def train_step(self, data):
        """Keras's TensorFlow train step, plus the global gradient norm (logged before clipping),
        clipping to `gradient_clip_norm`, accumulation and the weight average (`compile`)."""
        x, y = data[0], data[1]
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self._compute_loss(x=x, y=y, y_pred=y_pred, training=True)
            replicas = tf.distribute.get_strategy().num_replicas_in_sync  # loss is scaled by 1/N
            self._loss_tracker.update_state(
                loss * replicas, sample_weight=tf.shape(x["encoder_token_ids"])[0]
            )
            scaled_loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled_loss, self.trainable_weights)
        if getattr(self, "accumulator", None) is None:
            self._apply(gradients)
        else:
            due = self.accumulator.add(gradients, tf.math.count_nonzero(y))
            tf.cond(due, lambda: self._apply(self.accumulator.mean()), lambda: tf.no_op())
        return self.compute_metrics(x, y, y_pred)

    def _apply(self, gradients):
        """Clips and applies one update's gradients; logs their norm; updates the average."""
        norm = tf.linalg.global_norm(gradients)
        scale = getattr(self.optimizer, "dynamic_scale", None)  # mixed_float16 loss scaling
        scale = 1.0 if scale is None else scale
        if self.gradient_clip_norm:
            clip = self.gradient_clip_norm * scale
            gradients, _ = tf.clip_by_global_norm(gradients, clip, use_norm=norm)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        self.gradient_norm_tracker.update_state(norm / scale)
        if getattr(self, "weight_average", None) is not None:
            self.weight_average.update(self.optimizer.iterations - 1)
        return tf.no_op()

    # === Incremental decoding (the step function of seq2seq.model.step) ===
    def encode(self, source_ids):
        """Source ids -> (decoder state, memory) for the step function.

        The state is the flat list [h0, c0, h1, c1, ...], plus the attentional vector h~ with
        input feeding; every tensor has the batch as its leading dimension. The memory's source
        axis is padded to the attention's `shape_multiple` (masked).
        """
        memory, states, source_mask = self.encoder(source_ids, training=False)
        state = self.decoder.initial_step_states(self.bridge(states, memory[:, 0, :]))
        attention = self.decoder.attention_layer
        keys = attention.project_keys(memory)
        # Padded once a search, so that its steps' matmuls meet few shapes (see attention.py).
        memory, keys, mask = attention.pad_source(memory, keys, source_mask)
        return state, {"memory": memory, "keys": keys, "mask": mask}

    def decode_step_fn(self, vocabulary_multiple=1, with_attention=False):
        """The step function `(tokens, state, memory) -> (logits, state)`, with the weights read
        once, here: call it outside a decoding loop and hand the loop the function.

        Its logits cover a multiple of `vocabulary_multiple` tokens, those past the vocabulary at
        -inf. With `with_attention`, it also returns the attention weights (rows, padded source).
        """
        weights = self.decoder.decoding_weights(vocabulary_multiple)

        def step(tokens, state, memory):
            logits, state, attention = self.decoder.step(
                tokens, state, memory["memory"], memory["keys"], memory["mask"], weights
            )
            return (logits, state, attention) if with_attention else (logits, state)

        return step

    def decode_step(self, tokens, state, memory):
        """One step, reading the weights at the call (`decode_step_fn` reads them once)."""
        return self.decode_step_fn()(tokens, state, memory)

    def get_config(self):
        return {
            "source_vocabulary_size": self.source_vocabulary_size,
            "target_vocabulary_size": self.target_vocabulary_size,
            "embedding_dim": self.embedding_dim,
            "units": self.units,
            "encoder_layers": self.encoder_layers,
            "decoder_layers": self.decoder_layers,
            "bidirectional": self.bidirectional,
            "attention": self.attention,
            "dropout": self.dropout,
            "bridge": self.bridge_kind,
            "residual": self.residual,
            "input_feeding": self.input_feeding,
            "tie_embeddings": self.tie_embeddings,
            "share_embeddings": self.share_embeddings,
            "source_word_dropout": self.source_word_dropout,
            "name": self.name,
        }
