"""What one training step of the LSTM-attention model would cost if only its matmuls ran.

Lists every matmul of a step (forward and both gradients, the way `seq2seq.lstm` computes
them: input projections for all steps at once, one recurrent matmul a step, the recurrent
weight gradient once over all steps), times each shape on this machine, and prints the sum:
a floor under the step time, and the target tokens/s it would allow. Each shape is timed as a
batch of independent matmuls, so TensorFlow's threads run them side by side as in a step.

    python scripts/matmul_floor.py                     # the reference configuration, bfloat16
    python scripts/matmul_floor.py --dtype float32 --units 1024 --target-length 25
"""

import argparse
import functools
import time
from dataclasses import dataclass

import numpy as np
import tensorflow as tf


@dataclass(frozen=True)
class Matmul:
    name: str
    m: int
    k: int
    n: int
    count: int  # how many a step
    batch: int = 1  # a batched matmul's batch size (attention)

    @property
    def flops(self):
        return 2 * self.m * self.k * self.n * self.batch * self.count


def _with_gradients(name, m, k, n, count, batch=1):
    """x (m, k) @ w (k, n), and its gradients dx = dy w^T (m, n, k) and dw = x^T dy (k, m, n)."""
    return [
        Matmul(name, m, k, n, count, batch),
        Matmul(f"{name} d_input", m, n, k, count, batch),
        Matmul(f"{name} d_weight", k, m, n, count, batch),
    ]


def _lstm_layer(name, batch, steps, input_dim, units, directions):
    gates = 4 * units
    return [
        *_with_gradients(f"{name} input projection", batch * steps, input_dim, gates, directions),
        Matmul(f"{name} recurrent step", batch, units, gates, steps * directions),
        Matmul(f"{name} recurrent step d_input", batch, gates, units, steps * directions),
        Matmul(f"{name} recurrent d_weight", units, batch * steps, gates, directions),
    ]


def step_matmuls(
    batch,
    source_length,
    target_length,
    embedding_dim,
    units,
    encoder_layers,
    decoder_layers,
    vocabulary,
    bidirectional=True,
):
    """Every matmul of a training step of `seq2seq.model.Translator` with Luong general
    attention and no input feeding."""
    directions = 2 if bidirectional else 1
    matmuls = []
    for i in range(encoder_layers):
        input_dim = embedding_dim if i == 0 else units
        matmuls += _lstm_layer(
            f"encoder {i + 1}", batch, source_length, input_dim, units // directions, directions
        )
    for i in range(decoder_layers):
        input_dim = embedding_dim if i == 0 else units
        matmuls += _lstm_layer(f"decoder {i + 1}", batch, target_length, input_dim, units, 1)
    source_rows, target_rows = batch * source_length, batch * target_length
    matmuls += _with_gradients("attention keys", source_rows, units, units, 1)
    matmuls += _with_gradients("attention scores", target_length, units, source_length, 1, batch)
    matmuls += _with_gradients("attention context", target_length, source_length, units, 1, batch)
    matmuls += _with_gradients("attentional layer", target_rows, 2 * units, units, 1)
    matmuls += _with_gradients("output projection", target_rows, units, vocabulary, 1)
    return matmuls


def seconds_per_matmul(matmul, dtype, repeats):
    return _seconds_per_shape(matmul.m, matmul.k, matmul.n, matmul.batch, dtype, repeats)


@functools.cache  # a step has several matmuls of one shape (both encoder layers' steps)
def _seconds_per_shape(m, k, n, batch, dtype, repeats, group=16):
    """The median time of one matmul of this shape, over `repeats` runs of `group` at once."""

    def tensor(*shape):
        return tf.cast(tf.random.normal(shape), dtype)

    left = (batch, m, k) if batch > 1 else (m, k)
    right = (batch, k, n) if batch > 1 else (k, n)
    lefts = [tensor(*left) for _ in range(group)]  # distinct inputs: nothing is computed once
    weight = tensor(*right)
    run = tf.function(lambda lefts, weight: [tf.matmul(x, weight) for x in lefts])
    run(lefts, weight)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(lefts, weight)[-1].numpy()
        times.append((time.perf_counter() - start) / group)
    return float(np.median(times))


def report(matmuls, dtype, repeats, target_tokens):
    total = 0.0
    print(
        f"{'matmul':42s} {'m x k x n (batch)':>22s} {'a step':>7s} {'us each':>9s} "
        f"{'GFLOP/s':>8s} {'ms a step':>9s}"
    )
    for matmul in matmuls:
        seconds = seconds_per_matmul(matmul, dtype, repeats)
        total += seconds * matmul.count
        shape = f"{matmul.m} x {matmul.k} x {matmul.n}" + (
            f" ({matmul.batch})" if matmul.batch > 1 else ""
        )
        rate = matmul.flops / matmul.count / seconds / 1e9
        print(
            f"{matmul.name:42s} {shape:>22s} {matmul.count:7d} {seconds * 1e6:9.1f} "
            f"{rate:8.0f} {seconds * matmul.count * 1e3:9.2f}"
        )
    flops = sum(m.flops for m in matmuls)
    print(
        f"total: {total * 1e3:.1f} ms a step for {flops / 1e9:.1f} GFLOP "
        f"({flops / total / 1e9:.0f} GFLOP/s, {flops / target_tokens / 1e6:.1f} MFLOP a target "
        f"token); {target_tokens} target tokens a step: at most {target_tokens / total:,.0f} "
        "target tokens/s"
    )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="sentences a batch")
    parser.add_argument("--source-length", type=int, default=15, help="source steps a batch")
    parser.add_argument("--target-length", type=int, default=16, help="target steps a batch")
    parser.add_argument("--embedding-dim", type=int, default=256)
    parser.add_argument("--units", type=int, default=512, help="decoder units")
    parser.add_argument("--encoder-layers", type=int, default=2)
    parser.add_argument("--decoder-layers", type=int, default=2)
    parser.add_argument("--vocabulary", type=int, default=5483, help="target vocabulary size")
    parser.add_argument("--unidirectional", action="store_true", help="a one-direction encoder")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    parser.add_argument("--repeats", type=int, default=7, help="timings a shape (the median)")
    args = parser.parse_args(argv)
    for name, value in vars(args).items():
        if type(value) is int and value < 1:
            parser.error(f"--{name.replace('_', '-')}={value} must be at least 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    matmuls = step_matmuls(
        args.batch,
        args.source_length,
        args.target_length,
        args.embedding_dim,
        args.units,
        args.encoder_layers,
        args.decoder_layers,
        args.vocabulary,
        not args.unidirectional,
    )
    report(matmuls, args.dtype, args.repeats, args.batch * args.target_length)


if __name__ == "__main__":
    main()
