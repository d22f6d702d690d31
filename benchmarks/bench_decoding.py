"""Benchmarks greedy and beam search, with and without XLA, on a realistic toy decoder step.

The step mirrors `seq2seq.model.Translator.decode_step`: an embedding lookup, two stacked
`keras.layers.LSTMCell`s, Luong "general" attention over a `(B, src_len, units)` memory (keys
projected once, outside the loop), a tanh attentional layer and a projection to the vocabulary.
Random weights never favour EOS, so every sentence decodes the full `--max-length` tokens: the
figures are the worst case per batch. `--step table` swaps in a near-free step (fixed logits) to
isolate the cost of the search itself. `beam_t` is beam search with `beam_size`, `alpha` and
`n_best` passed as scalar tensors, as the SavedModel does (dynamic shapes). `--baseline FILE`
times another version of `decoding.py` (e.g. `git show HEAD:seq2seq/decoding.py > /tmp/old.py`)
in the same process, interleaved, which is the only fair comparison on a busy machine.

Usage:
    python scripts/bench_decoding.py                        # all searches, with and without XLA
    python scripts/bench_decoding.py --step table --runs 9  # search overhead only
    python scripts/bench_decoding.py --baseline /tmp/old.py --xla off
"""

import argparse
import importlib.util
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from seq2seq import decoding  # noqa: E402

BOS, EOS = 1, 2


class ToyDecoder:
    """Embedding, stacked LSTM cells, Luong general attention and a vocabulary projection."""

    def __init__(self, vocab, units, layers):
        self.embedding = keras.layers.Embedding(vocab, units)
        self.cells = [keras.layers.LSTMCell(units) for _ in range(layers)]
        self.key_projection = keras.layers.Dense(units, use_bias=False)
        self.attentional = keras.layers.Dense(units, activation="tanh", use_bias=False)
        self.projection = keras.layers.Dense(vocab)
        self.units = units
        self._build(vocab)

    def _build(self, vocab):
        self.embedding.build((None,))
        for cell in self.cells:
            cell.build((None, self.units))
        self.key_projection.build((None, None, self.units))
        self.attentional.build((None, 2 * self.units))
        self.projection.build((None, self.units))

    def encode(self, memory, mask):
        """Initial state (zeros) and the memory dict with keys projected once."""
        batch = tf.shape(memory)[0]
        zeros = tf.zeros([batch, self.units])
        state = [zeros] * (2 * len(self.cells))
        return state, {"memory": memory, "keys": self.key_projection(memory), "mask": mask}

    def step(self, tokens, state, memory):
        x = tf.gather(self.embedding.embeddings, tokens)
        new_state = []
        for i, cell in enumerate(self.cells):
            x, (h, c) = cell(x, state[2 * i : 2 * i + 2], training=False)
            new_state += [h, c]
        # The beams of a sentence are consecutive rows sharing its (untiled) memory row.
        batch = tf.shape(memory["keys"])[0]
        grouped = tf.reshape(x, [batch, -1, self.units])  # (B, K, units)
        scores = tf.einsum("bku,bsu->bks", grouped, memory["keys"])
        scores = tf.where(memory["mask"][:, None, :], scores, -1e9)
        context = tf.einsum("bks,bsu->bku", tf.nn.softmax(scores), memory["memory"])
        context = tf.reshape(context, tf.shape(x))
        attentional = self.attentional(tf.concat([context, x], -1))
        return self.projection(attentional), new_state


class TableDecoder:
    """A near-free step (fixed random logits) to time the search loop alone."""

    def __init__(self, vocab, units, rows=64):
        self.table = tf.random.stateless_normal([rows, vocab], seed=[1, 2], stddev=3.0)
        self.units = units

    def encode(self, memory, mask):
        return [tf.zeros([tf.shape(memory)[0], self.units])], {"mask": mask}

    def step(self, tokens, state, memory):
        del memory
        logits = tf.gather(self.table, tokens % self.table.shape[0])
        return logits, [state[0] + 1.0]


def load_module(path):
    """Imports the Python file `path` as a fresh module (another version of `decoding.py`)."""
    spec = importlib.util.spec_from_file_location(f"decoding_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_decode(search_lib, decoder, search, beam_size, max_length, jit):
    """A `tf.function` that encodes the memory and runs one search of `search_lib`."""

    @tf.function(jit_compile=jit)
    def decode(memory, mask, max_lengths):
        state, mem = decoder.encode(memory, mask)
        kwargs = {"bos_id": BOS, "eos_id": EOS, "max_lengths": max_lengths}
        kwargs["max_output_length"] = max_length
        if search == "greedy":
            return search_lib.greedy_search(decoder.step, state, mem, **kwargs)
        settings = {"beam_size": beam_size, "alpha": 0.6, "n_best": 1}
        if search == "beam_t":
            settings = {key: tf.constant(value) for key, value in settings.items()}
        return search_lib.beam_search(decoder.step, state, mem, **settings, **kwargs)

    return decode


def mean_length(ids):
    """Mean number of generated tokens (EOS included) of the best hypotheses."""
    ids = tf.reshape(ids, [tf.shape(ids)[0], -1, tf.shape(ids)[-1]])[:, 0]
    return float(tf.reduce_mean(tf.reduce_sum(tf.cast(ids != 0, tf.float32), axis=-1)))


def time_interleaved(fns, args, runs):
    """Calls every function once (trace and compile), then `runs` times in turn.

    Interleaving spreads the noise of a shared machine evenly over the configurations. Returns
    `{name: (first_call_seconds, [(wall ms, process CPU ms) per later call], mean output length)}`;
    CPU time, summed over threads, is less sensitive than wall time to other processes.
    """
    results = {}
    for name, fn in fns.items():
        start = time.perf_counter()
        ids = fn(*args)[0].numpy()
        results[name] = (time.perf_counter() - start, [], mean_length(ids))
    for _ in range(runs):
        for name, fn in fns.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn(*args)[0].numpy()
            wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
            results[name][1].append((1000 * wall, 1000 * cpu))
    return results


def make_inputs(batch, src_len, units, max_length):
    memory = tf.random.stateless_normal([batch, src_len, units], seed=[3, 4])
    lengths = tf.random.stateless_uniform([batch], [5, 6], 5, src_len + 1, dtype=tf.int32)
    mask = tf.range(src_len)[None, :] < lengths[:, None]
    return memory, mask, tf.fill([batch], max_length)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--step", choices=["toy", "table"], default="toy")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--vocab", type=int, default=6000)
    parser.add_argument("--units", type=int, default=512)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--src-len", type=int, default=20)
    parser.add_argument("--max-length", type=int, default=40)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--searches", default="greedy,beam,beam_t", help="subset of these")
    parser.add_argument("--xla", default="off,on", help="comma-separated subset of off,on")
    parser.add_argument("--baseline", help="another decoding.py to time against this one")
    parser.add_argument("--threads", type=int, help="TF intra-op threads (default: all cores)")
    return parser.parse_args()


def main():
    args = parse_args()
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    keras.utils.set_random_seed(0)
    if args.step == "toy":
        decoder = ToyDecoder(args.vocab, args.units, args.layers)
    else:
        decoder = TableDecoder(args.vocab, args.units)
    inputs = make_inputs(args.batch, args.src_len, args.units, args.max_length)
    print(
        f"step={args.step} batch={args.batch} beam={args.beam} vocab={args.vocab} "
        f"units={args.units} layers={args.layers} src_len={args.src_len} "
        f"max_length={args.max_length} runs={args.runs} threads={args.threads or os.cpu_count()}"
    )
    libs = {"new": decoding}
    if args.baseline:
        libs["base"] = load_module(args.baseline)
    fns = {
        (lib, search, xla): make_decode(
            libs[lib], decoder, search, args.beam, args.max_length, xla == "on"
        )
        for search in args.searches.split(",")
        for xla in args.xla.split(",")
        for lib in libs
        if not (lib == "base" and search == "beam_t")  # older versions take Python numbers only
    }
    results = time_interleaved(fns, inputs, args.runs)
    for (lib, search, xla), (first, times, length) in results.items():
        wall, cpu = zip(*times)
        median, median_cpu = statistics.median(wall), statistics.median(cpu)
        print(
            f"{lib:4s} {search:6s} xla={xla:3s} wall ms/batch: median {median:7.1f}"
            f" min {min(wall):7.1f} max {max(wall):7.1f} | CPU ms median {median_cpu:7.1f}"
            f" | first call {first:4.1f} s | mean length {length:4.1f}"
        )


if __name__ == "__main__":
    main()
