"""Optimizers and learning-rate schedules chosen by name (all through Keras)."""

import keras
import tensorflow as tf
from keras import ops

from seq2seq.training.stopping import DevBleuPatience


class FusedAdamUpdate:
    """Adam's update of one variable as TensorFlow's fused `ResourceApplyAdam` kernel.

    The same arithmetic as Keras's `Adam.update_step` (m, v, then var -= lr_t m / (sqrt(v) +
    eps), lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)), in one multi-threaded pass over the variable
    instead of about ten. Under a tf.distribute strategy, and with amsgrad, Keras's own update
    runs.
    """

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or tf.distribute.has_strategy() or not hasattr(variable, "handle"):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        return tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=self._momentums[index].value.handle,
            v=self._velocities[index].value.handle,
            beta1_power=tf.pow(tf.cast(self.beta_1, dtype), step),
            beta2_power=tf.pow(tf.cast(self.beta_2, dtype), step),
            lr=tf.cast(learning_rate, dtype),
            beta1=tf.cast(self.beta_1, dtype),
            beta2=tf.cast(self.beta_2, dtype),
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(tf.convert_to_tensor(gradient), dtype),  # sparse rows made dense
        )


@keras.saving.register_keras_serializable(package="seq2seq")
class Adam(FusedAdamUpdate, keras.optimizers.Adam):
    """keras.optimizers.Adam with the fused update (`FusedAdamUpdate`)."""


@keras.saving.register_keras_serializable(package="seq2seq")
class AdamW(FusedAdamUpdate, keras.optimizers.AdamW):
    """keras.optimizers.AdamW (decoupled weight decay) with the fused Adam update."""


OPTIMIZERS = {
    "adam": Adam,
    "adamw": AdamW,
    "sgd": keras.optimizers.SGD,
}


@keras.saving.register_keras_serializable(package="seq2seq")
class InverseSquareRoot(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup to `learning_rate` over `warmup_steps`, then decay as 1/sqrt(step)."""

    def __init__(self, learning_rate, warmup_steps):
        self.learning_rate = learning_rate
        self.warmup_steps = warmup_steps

    def __call__(self, step):
        step = ops.cast(step, "float32") + 1.0
        warmup = float(max(self.warmup_steps, 1))
        scale = ops.minimum(step / warmup, ops.sqrt(warmup / step))
        return self.learning_rate * scale

    def get_config(self):
        return {"learning_rate": self.learning_rate, "warmup_steps": self.warmup_steps}


@keras.saving.register_keras_serializable(package="seq2seq")
class StepHalving(keras.optimizers.schedules.LearningRateSchedule):
    """Luong et al. (2015) style: constant until `start_step`, then halved every `every_steps`."""

    def __init__(self, learning_rate, start_step, every_steps):
        self.learning_rate = learning_rate
        self.start_step = start_step
        self.every_steps = every_steps

    def __call__(self, step):
        step = ops.cast(step, "float32")
        halvings = ops.floor(ops.maximum(step - self.start_step, 0.0) / self.every_steps)
        halvings = ops.where(step >= self.start_step, halvings + 1.0, 0.0)
        return self.learning_rate * ops.power(0.5, halvings)

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "start_step": self.start_step,
            "every_steps": self.every_steps,
        }


def learning_rate_schedule(
    name, learning_rate, *, warmup_steps, decay_start_step, decay_every_steps, total_steps
):
    """The schedule registered as `name`: constant (also used by plateau), inverse_sqrt,
    halving or cosine."""
    if name in ("constant", "plateau"):
        return learning_rate
    if name == "inverse_sqrt":
        return InverseSquareRoot(learning_rate, warmup_steps)
    if name == "halving":
        return StepHalving(learning_rate, decay_start_step, decay_every_steps)
    if name == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            0.0 if warmup_steps else learning_rate,
            max(total_steps - warmup_steps, 1),
            warmup_target=learning_rate if warmup_steps else None,
            warmup_steps=warmup_steps,
        )
    raise ValueError(f"trainer.schedule={name!r} is unknown; choose one of {SCHEDULES}")


SCHEDULES = ("constant", "inverse_sqrt", "halving", "cosine", "plateau")


def make_optimizer(name, learning_rate, *, weight_decay):
    """A Keras optimizer by name; `learning_rate` may be a float or a schedule.

    Gradient clipping is not the optimizer's: the train step clips by the global norm it also
    logs (`Translator.compile(gradient_clip_norm=...)`).
    """
    if name not in OPTIMIZERS:
        raise ValueError(
            f"trainer.optimizer={name!r} is unknown; choose one of {sorted(OPTIMIZERS)}"
        )
    kwargs = {"learning_rate": learning_rate}
    if name == "adamw":
        kwargs["weight_decay"] = weight_decay
    return OPTIMIZERS[name](**kwargs)


class ReduceOnPlateau(DevBleuPatience):
    """Multiplies the learning rate by `factor` when dev BLEU has not improved for `patience`
    evaluations (fed by `DevEvaluation`, after epochs or every N batches)."""

    def __init__(self, model, factor, patience, min_learning_rate=0.0):
        super().__init__(model, patience)
        self.factor = factor
        self.min_learning_rate = min_learning_rate

    def on_patience_exhausted(self):
        lr = float(ops.convert_to_numpy(self.model.optimizer.learning_rate))
        self.model.optimizer.learning_rate = max(lr * self.factor, self.min_learning_rate)
        self.wait = 0
