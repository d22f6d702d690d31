"""Gradient accumulation: k batches make the update one batch of all their pairs makes."""

import keras
import numpy as np
import pytest

from seq2seq.training import optim
from seq2seq.training.model_setup import build_translator

ARCHITECTURE = dict(
    embedding_dim=8,
    units=8,
    encoder_layers=1,
    decoder_layers=1,
    bidirectional=False,
    attention="general",
    dropout=0.0,
    bridge="copy",
    residual=False,
    input_feeding=False,
    tie_embeddings=False,
)


def _model(accumulate_steps, optimizer, clipnorm=None):
    keras.utils.set_random_seed(0)
    return build_translator(
        20,
        20,
        optimizer=optimizer,
        label_smoothing=0.1,
        clipnorm=clipnorm,
        accumulate_steps=accumulate_steps,
        **ARCHITECTURE,
    )


def _batch(rng, rows, length):
    """Right-padded random pairs of different lengths: (inputs, labels)."""
    lengths = rng.integers(1, length + 1, rows)
    mask = np.arange(length)[None, :] < lengths[:, None]
    ids = lambda: np.where(mask, rng.integers(4, 20, (rows, length)), 0).astype("int32")  # noqa: E731
    return {"encoder_token_ids": ids(), "decoder_token_ids": ids()}, ids()


def _joined(batches):
    """One batch of all the pairs, padded to the longest."""
    width = max(labels.shape[1] for _, labels in batches)
    pad = lambda a: np.pad(a, [(0, 0), (0, width - a.shape[1])])  # noqa: E731
    inputs = {k: np.concatenate([pad(x[k]) for x, _ in batches]) for k in batches[0][0]}
    return inputs, np.concatenate([pad(labels) for _, labels in batches])


@pytest.mark.parametrize(
    "optimizer, clipnorm",
    [(lambda: keras.optimizers.SGD(1.0), None), (lambda: optim.Adam(0.01), 0.05)],
    ids=["sgd", "adam_clipped"],
)
def test_three_batches_make_the_update_of_one_batch_of_all_their_pairs(optimizer, clipnorm):
    rng = np.random.default_rng(0)
    batches = [_batch(rng, 3, 7), _batch(rng, 5, 4), _batch(rng, 2, 9)]  # unequal token counts
    accumulating = _model(3, optimizer(), clipnorm)
    initial = [w.copy() for w in accumulating.get_weights()]
    for i, (inputs, labels) in enumerate(batches):
        accumulating.train_on_batch(inputs, labels)
        if i < 2:  # no update before the third batch
            assert all(np.array_equal(a, b) for a, b in zip(initial, accumulating.get_weights()))
    assert int(accumulating.optimizer.iterations) == 1
    large = _model(1, optimizer(), clipnorm)
    large.train_on_batch(*_joined(batches))
    changed = 0
    for a, b, before in zip(accumulating.get_weights(), large.get_weights(), initial):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
        changed += not np.allclose(a, before)
    assert changed > len(initial) // 2  # the update did something to compare


def test_the_plain_mean_of_the_batches_gradients_is_not_that_update():
    """Why the gradients are weighted by tokens: Keras's accumulation (a plain mean) differs."""
    rng = np.random.default_rng(0)
    batches = [_batch(rng, 1, 2), _batch(rng, 6, 9)]
    plain = _model(1, keras.optimizers.SGD(1.0, gradient_accumulation_steps=2))
    for inputs, labels in batches:
        plain.train_on_batch(inputs, labels)
    large = _model(1, keras.optimizers.SGD(1.0))
    large.train_on_batch(*_joined(batches))
    gaps = [np.abs(a - b).max() for a, b in zip(plain.get_weights(), large.get_weights())]
    assert max(gaps) > 1e-3
