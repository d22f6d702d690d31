"""Gradient accumulation: `steps` batches make one optimizer update, the update a batch of all
their pairs would make.

The loss of a batch is its mean over real target tokens, so the gradient of k batches together
is the token-weighted mean of theirs: each batch's gradient is added times its token count, and
the sum is divided by all their tokens before the update (clipped then, not batch by batch).
Keras's `gradient_accumulation_steps` takes the plain mean of the batches' gradients, which
weights a short batch's tokens more, and clips each batch alone.
"""

import tensorflow as tf


class GradientAccumulator(tf.Module):
    """Token-weighted sums of the gradients of `variables` over `steps` batches."""

    def __init__(self, variables, steps):
        super().__init__(name="gradient_accumulator")
        self.steps = int(steps)
        self.sums = [_zeros_like(v, f"gradient_sum_{i}") for i, v in enumerate(variables)]
        self.tokens = _zeros_like(tf.constant(0.0), "tokens")
        self.batches = _zeros_like(tf.constant(0, tf.int64), "batches")

    def add(self, gradients, tokens):
        """Adds one batch's gradients (of its token-mean loss) and its real target tokens;
        True when `steps` batches are in (`mean` is then due)."""
        tokens = tf.cast(tokens, tf.float32)
        for total, gradient in zip(self.sums, gradients):
            total.assign_add(tf.convert_to_tensor(gradient) * tf.cast(tokens, total.dtype))
        self.tokens.assign_add(tokens)
        self.batches.assign_add(1)
        return tf.equal(self.batches % self.steps, 0)

    def mean(self):
        """The token-weighted mean gradient, and the sums reset for the next update."""
        count = tf.maximum(self.tokens.read_value(), 1.0)
        mean = [tf.identity(total) / tf.cast(count, total.dtype) for total in self.sums]
        with tf.control_dependencies(mean):
            for total in self.sums:
                total.assign(tf.zeros_like(total))
            self.tokens.assign(0.0)
        return [tf.identity(m) for m in mean]


def _zeros_like(variable, name):
    return tf.Variable(
        tf.zeros(variable.shape, variable.dtype),
        trainable=False,
        name=name,
        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
    )
