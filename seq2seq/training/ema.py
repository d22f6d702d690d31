"""An exponential moving average of the weights (Polyak averaging; Marian's
`--exponential-smoothing`, OpenNMT-py's `-average_decay`).

After every optimizer update, average = decay * average + (1 - decay) * weight, with the decay
warmed up as min(decay, (1 + t) / (10 + t)) at update t (TensorFlow's `ExponentialMovingAverage`
with `num_updates`) so that early averages are not dominated by the initial weights. The
training step updates the averages in-graph; dev BLEU, the checkpoint files, the final weights
and the export see them through `applied`, which swaps them with the weights for a while.
The averages are variables of the resumable state, so a resumed run continues them exactly.

Keras's own `use_ema` was not used: it writes the averages over the weights at the end of
every `model.fit` call (training would continue from them after a resumed partial epoch), and
with gradient accumulation it updates them at every batch rather than every update.
"""

import contextlib

import tensorflow as tf


class WeightAverage(tf.Module):
    """The moving averages of `variables` (a model's trainable weights), created as copies."""

    def __init__(self, variables, decay):
        super().__init__(name="weight_average")
        self.decay = float(decay)
        self.weights = list(variables)
        self.averages = [_copy(v, f"average_{i}") for i, v in enumerate(self.weights)]

    def update(self, step):
        """Moves the averages towards the weights after update number `step` (0 = the first)."""
        step = tf.cast(step, tf.float32)
        decay = tf.minimum(self.decay, (1.0 + step) / (10.0 + step))
        for weight, average in zip(self.weights, self.averages):
            rate = tf.cast(1.0 - decay, average.dtype)
            average.assign_sub(rate * (average - tf.cast(weight, average.dtype)))

    def swap(self):
        """Exchanges the weights' values with the averages'."""
        for weight, average in zip(self.weights, self.averages):
            kept = tf.identity(weight)
            weight.assign(average)
            average.assign(kept)

    @contextlib.contextmanager
    def applied(self):
        """The weights are the averages inside the block, and their own values again after."""
        self.swap()
        try:
            yield
        finally:
            self.swap()

    def restart(self):
        """Starts the averages again from the weights' current values."""
        for weight, average in zip(self.weights, self.averages):
            average.assign(tf.cast(weight, average.dtype))

    def copy_to_weights(self):
        """Gives the weights the averages' values for good (the end of training)."""
        for weight, average in zip(self.weights, self.averages):
            weight.assign(average)


def _copy(variable, name):
    """A non-trainable variable holding `variable`'s value; under a tf.distribute strategy,
    updated by the first replica only (every replica computes the same update)."""
    return tf.Variable(
        tf.convert_to_tensor(variable),
        trainable=False,
        name=name,
        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
    )


@contextlib.contextmanager
def averaged_weights(weight_average):
    """`weight_average.applied()`, or nothing when there is no average (None)."""
    if weight_average is None:
        yield
    else:
        with weight_average.applied():
            yield
