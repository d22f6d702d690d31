"""The model as training takes it: precision, seeds, initial weights, loss, metrics, clipping."""

import random

import keras
import numpy as np
import tensorflow as tf

from seq2seq.model import translator
from seq2seq.training.accumulation import GradientAccumulator
from seq2seq.training.ema import WeightAverage
from seq2seq.training.losses import MaskedCrossEntropy, NegativeLogLikelihood, TokenAccuracy


def set_seed(seed, deterministic=False):
    """Seeds Python, NumPy and TensorFlow; with `deterministic`, TensorFlow's ops run their
    deterministic implementations too (an op without one then fails, naming itself)."""
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def reseed_host(seed):
    """Seeds Python and NumPy again (Keras draws its default initializer seeds from Python's
    generator). TensorFlow's seed stays: resetting it would drop the SentencePiece resources."""
    random.seed(seed)
    np.random.seed(seed)


def build_translator(
    source_vocabulary_size,
    target_vocabulary_size,
    *,
    optimizer,
    label_smoothing,
    clipnorm=None,
    param_init=0.0,
    accumulate_steps=1,
    ema_decay=0.0,
    **architecture,
):
    """A compiled Translator: the optimizer, masked (label-smoothed) cross-entropy, token
    metrics, clipping to a global gradient norm of `clipnorm`; every weight built, and drawn
    from U(-param_init, param_init) when `param_init` > 0. With `accumulate_steps` > 1, that
    many batches make an update (`accumulation`); with `ema_decay` > 0, the model keeps a moving
    average of its weights (`ema`), as `model.weight_average`."""
    model = translator.build(source_vocabulary_size, target_vocabulary_size, **architecture)
    if param_init:
        initialize_uniformly(model, param_init)
    weights = model.trainable_weights
    accumulator = GradientAccumulator(weights, accumulate_steps) if accumulate_steps > 1 else None
    model.compile(
        optimizer=optimizer,
        loss=MaskedCrossEntropy(label_smoothing),
        metrics=[NegativeLogLikelihood(), TokenAccuracy()],
        gradient_clip_norm=clipnorm,
        accumulator=accumulator,
        weight_average=WeightAverage(weights, ema_decay) if ema_decay else None,
    )
    model.optimizer.build(weights)  # not inside the accumulating step's conditional update
    # Keras builds compiled metrics at the first step; a resumed run restores their totals
    # before it, so they are built now.
    one = tf.ones((1, 2), tf.int32)
    predictions = model({"encoder_token_ids": one, "decoder_token_ids": one})
    model.compute_metrics(None, one, predictions)
    model.reset_metrics()
    return model


def initialize_uniformly(model, scale):
    """Draws every trainable weight from U(-scale, scale), biases included (NumPy's seeded
    generator), as OpenNMT's `param_init` and tensorflow/nmt's `init_weight` do: with Keras's
    own initializers (glorot, orthogonal) the reference configuration learned about three times
    slower (docs/results.md)."""
    for weight in model.trainable_weights:
        weight.assign(np.random.uniform(-scale, scale, weight.shape).astype(weight.dtype))
