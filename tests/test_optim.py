import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq2seq.model.weights import load_weights
from seq2seq.run_folder import RunFolder
from seq2seq.training import checkpoints, optim
from seq2seq.training.stopping import EarlyStopping


def _rates(schedule, steps):
    return np.array([float(schedule(s)) for s in steps])


def test_inverse_sqrt_warms_up_linearly_then_decays():
    rates = _rates(optim.InverseSquareRoot(1.0, warmup_steps=4), [0, 1, 3, 15, 63])
    np.testing.assert_allclose(rates, [0.25, 0.5, 1.0, 0.5, 0.25], rtol=1e-6)


def test_halving_starts_at_step_and_repeats():
    rates = _rates(optim.StepHalving(1.0, start_step=10, every_steps=5), [0, 9, 10, 14, 15, 20])
    np.testing.assert_allclose(rates, [1, 1, 0.5, 0.5, 0.25, 0.125])


@pytest.mark.parametrize("name", optim.SCHEDULES)
def test_every_schedule_builds_an_optimizer_that_round_trips(name):
    schedule = optim.learning_rate_schedule(
        name, 0.01, warmup_steps=2, decay_start_step=5, decay_every_steps=5, total_steps=20
    )
    for opt_name in optim.OPTIMIZERS:
        opt = optim.make_optimizer(opt_name, schedule, weight_decay=0.01)
        clone = opt.__class__.from_config(opt.get_config())
        assert clone.get_config()["learning_rate"] == opt.get_config()["learning_rate"]


def test_cosine_reaches_zero_at_the_end():
    schedule = optim.learning_rate_schedule(
        "cosine", 0.01, warmup_steps=0, decay_start_step=0, decay_every_steps=1, total_steps=10
    )
    assert float(schedule(0)) == pytest.approx(0.01) and float(schedule(10)) == pytest.approx(0)


def test_unknown_names_name_the_setting():
    with pytest.raises(ValueError, match="trainer.optimizer='nadamx'"):
        optim.make_optimizer("nadamx", 0.1, weight_decay=0.0)
    with pytest.raises(ValueError, match="trainer.schedule='wild'"):
        optim.learning_rate_schedule(
            "wild", 0.1, warmup_steps=0, decay_start_step=0, decay_every_steps=1, total_steps=1
        )


def _model():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="mse")
    return model


def test_plateau_halves_the_rate_after_patience_evaluations_without_gain():
    model = _model()
    plateau = optim.ReduceOnPlateau(model, factor=0.5, patience=2)
    for bleu in [10.0, 12.0, 11.0, 11.5, 13.0, 12.0]:
        plateau.on_dev_bleu(bleu)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.05)


def test_early_stopping_after_patience_evaluations_without_a_better_bleu():
    model = _model()
    stopping = EarlyStopping(model, patience=2)
    for bleu in [10.0, 12.0, 11.0, 13.0, 12.0]:
        stopping.on_dev_bleu(bleu)
        assert not model.stop_training
    restored = EarlyStopping(model, patience=2)  # after a resume
    restored.set_state(json.loads(json.dumps(stopping.get_state())))
    restored.on_dev_bleu(13.0)  # not better than 13.0: the second evaluation without gain
    assert model.stop_training


def test_keeper_keeps_last_k_and_best_by_dev_bleu_and_averages(tmp_path):
    model = _model()
    keeper = checkpoints.CheckpointKeeper(tmp_path, keep=2)  # tmp_path: the run folder
    keeper.set_model(model)
    for epoch, bleu in enumerate([5.0, 9.0, 7.0]):
        model.layers[0].kernel.assign(np.full((2, 1), float(epoch)))
        keeper.on_dev_bleu(bleu)
        keeper.on_epoch_end(epoch, {"loss": 1.0, "val_loss": 3.0 - epoch})
    folder = RunFolder(tmp_path)
    names = sorted(p.name for p in folder.checkpoints.glob("epoch_*"))
    assert names == ["epoch_002.weights.h5", "epoch_003.weights.h5"]
    load_weights(model, folder.best_weights)
    assert float(model.layers[0].kernel[0, 0]) == 1.0  # epoch 2 had the best BLEU
    checkpoints.average_checkpoints(model, folder.last_epoch_weights(2))
    assert float(model.layers[0].kernel[0, 0]) == pytest.approx(1.5)


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_fused_adam_updates_equal_keras_own(name):
    """Dense and sparse (embedding-row) gradients, a schedule, several steps."""
    rng = np.random.default_rng(0)
    start = [rng.normal(size=(5, 3)).astype("float32"), rng.normal(size=(7,)).astype("float32")]
    ours_vars = [keras.Variable(x) for x in start]
    keras_vars = [keras.Variable(x) for x in start]
    schedule = keras.optimizers.schedules.ExponentialDecay(0.01, 2, 0.5)
    ours = optim.make_optimizer(name, schedule, weight_decay=0.01)
    reference = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW}[name]
    theirs = reference(schedule, **({"weight_decay": 0.01} if name == "adamw" else {}))
    assert isinstance(ours, optim.FusedAdamUpdate)
    for _ in range(4):
        rows = tf.IndexedSlices(
            tf.constant(rng.normal(size=(2, 3)), tf.float32),
            tf.constant([1, 3]),
            tf.constant([5, 3]),
        )
        dense = tf.constant(rng.normal(size=(7,)), tf.float32)
        ours.apply_gradients(zip([rows, dense], ours_vars))
        theirs.apply_gradients(zip([rows, dense], keras_vars))
    for a, b in zip(ours_vars, keras_vars):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
