"""The moving average of the weights: its arithmetic, its swaps, and its place in the
resumable state and the checkpoint files."""

import keras
import numpy as np

from seq2seq.training.model_setup import build_translator
from seq2seq.training.resume import ResumeState
from tests.test_accumulation import ARCHITECTURE, _batch


def _model(ema_decay, accumulate_steps=1):
    keras.utils.set_random_seed(0)
    return build_translator(
        20,
        20,
        optimizer=keras.optimizers.SGD(1.0),
        label_smoothing=0.0,
        ema_decay=ema_decay,
        accumulate_steps=accumulate_steps,
        **ARCHITECTURE,
    )


def _averages(model):
    return [a.numpy() for a in model.weight_average.averages]


def test_the_average_follows_every_update_with_a_warmed_up_decay():
    model = _model(0.5)
    rng = np.random.default_rng(0)
    trainable = [i for i, w in enumerate(model.weights) if w.trainable]
    expected = [model.get_weights()[i] for i in trainable]
    for step in range(4):
        model.train_on_batch(*_batch(rng, 3, 5))
        decay = min(0.5, (1 + step) / (10 + step))  # 0.1, 0.18, 0.25, 0.31
        now = model.get_weights()
        expected = [decay * e + (1 - decay) * now[i] for e, i in zip(expected, trainable)]
    for average, wanted in zip(_averages(model), expected):
        np.testing.assert_allclose(average, wanted, rtol=1e-5, atol=1e-7)
    assert not np.allclose(_averages(model)[0], model.get_weights()[trainable[0]])


def test_applied_swaps_the_averages_in_and_back():
    model = _model(0.9)
    model.train_on_batch(*_batch(np.random.default_rng(1), 3, 5))
    own, averages = model.get_weights(), _averages(model)
    with model.weight_average.applied():
        inside = [w.numpy() for w in model.trainable_weights]
    assert all(np.array_equal(a, b) for a, b in zip(inside, averages))
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), own))
    assert all(np.array_equal(a, b) for a, b in zip(_averages(model), averages))


def test_the_average_and_a_partial_accumulation_are_resumed(tmp_path):
    rng = np.random.default_rng(2)
    model = _model(0.9, accumulate_steps=2)
    for _ in range(3):  # one update, and one batch waiting in the accumulator
        model.train_on_batch(*_batch(rng, 3, 5))
    ResumeState(tmp_path / "resume", model).save({"epoch": 0})
    saved = _averages(model), [s.numpy() for s in model.accumulator.sums]
    fresh = _model(0.9, accumulate_steps=2)
    state = ResumeState(tmp_path / "resume", fresh)
    state.checkpoint.restore(state.manager.latest_checkpoint).assert_existing_objects_matched()
    for before, after in zip(saved[0], _averages(fresh)):
        np.testing.assert_array_equal(before, after)
    for before, after in zip(saved[1], fresh.accumulator.sums):
        np.testing.assert_array_equal(before, after.numpy())
    assert int(fresh.accumulator.batches.numpy()) == 3
