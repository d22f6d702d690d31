"""`python benchmarks/benchmark.py`: training and decoding throughput, peak memory; prints JSON.

Defaults to the peer's reference configuration (`experiment=peer_reference`: Multi30k en->de).
Training throughput is measured over `--steps` batches after `--warmup` batches (tracing and
the first retraces excluded); decoding over the 1,000 test_2016_flickr sentences (or
`--split validation`) in length-sorted batches of 64, `decode.parallel_batches` at a time,
after one untimed pass that traces the functions, with the sacreBLEU of what was decoded.
Decoding runs with `decode.intra_op_threads` (`seq2seq.threads`), as `seq2seq.translate` does;
when training is timed too, in a second process, since the thread pool is set once a process.
Figures are printed, never asserted: this machine is shared and noisy, so repeat (`--repeats`)
and quote medians.
"""

import argparse
import contextlib
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import psutil
import tensorflow as tf

from seq2seq.config import compose
from seq2seq.evaluation.metrics import corpus_scores
from seq2seq.evaluation.scoring import split_texts, translate_sentences
from seq2seq.inference.threads import configure_decoding_threads
from seq2seq.inference.translator import TEXT_SIGNATURE, make_translator
from seq2seq.model.translator import set_precision
from seq2seq.model.weights import load_weights
from seq2seq.run_folder import RunFolder
from seq2seq.training.model_setup import set_seed
from seq2seq.training.run import build_model, prepare_data


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=60, help="timed training batches; 0 skips")
    parser.add_argument("--warmup", type=int, default=15, help="untimed batches first")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; medians reported")
    parser.add_argument("--decode-sentences", type=int, default=1000, help="0 skips decoding")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument(
        "--split",
        choices=("test", "validation"),
        default="test",
        help="sentences to decode (tune settings on validation)",
    )
    parser.add_argument("--run-dir", help="decode with this trained run's weights and tokenizers")
    parser.add_argument("--workdir", default="outputs/benchmark", help="tokenizers etc. go here")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data.manual_dir=...")
    args = parser.parse_args(argv)
    if not any(o.startswith("experiment=") for o in args.overrides):
        args.overrides.insert(0, "experiment=peer_reference")
    return args


def batch_tokens(inputs, labels):
    source = int(np.count_nonzero(inputs["encoder_token_ids"]))
    return source, int(np.count_nonzero(labels))


def time_training(model, dataset, warmup, steps):
    """Seconds (wall and this process's CPU) and tokens for `steps` train_on_batch calls after
    `warmup` calls. CPU seconds hardly change when other processes share the cores."""
    iterator = iter(dataset.repeat())
    for _ in range(warmup):
        inputs, labels = next(iterator)
        model.train_on_batch(inputs, labels)
    batches = [next(iterator) for _ in range(steps)]
    start, cpu_start = time.perf_counter(), time.process_time()
    for inputs, labels in batches:
        model.train_on_batch(inputs, labels)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    tokens = np.sum([batch_tokens(x, y) for x, y in batches], axis=0)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "source_tokens": int(tokens[0]),
        "target_tokens": int(tokens[1]),
    }


def time_decoding(translator, sentences, beam_size, repeats, parallel=1):
    """Median sentences/s, every run's rate, and the translations (`parallel` batches at a
    time, as `decode.parallel_batches`)."""
    fn = tf.function(
        lambda text: translator.translate_options(text, beam_size, translator.alpha, 1),
        input_signature=TEXT_SIGNATURE,
    )

    def translate(batch):
        return {"translation": fn(batch)["translations"][:, 0]}

    translations = translate_sentences(translate, sentences, 64, parallel)  # traces, warms up
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        translate_sentences(translate, sentences, 64, parallel)
        rates.append(len(sentences) / (time.perf_counter() - start))
    return statistics.median(rates), rates, translations


def build(cfg, args):
    set_seed(cfg.seed, cfg.trainer.deterministic)  # as training: its cost shows in the figures
    set_precision(cfg.trainer.precision)
    splits, toks, (train_ds, *_) = prepare_data(cfg, Path(args.run_dir or args.workdir))
    model = build_model(cfg, toks, train_ds)
    return splits, model, make_translator(model, toks, cfg.decode), train_ds


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    cfg = compose(args.overrides)
    decodes_here = args.decode_sentences and not args.steps
    if decodes_here:  # before TensorFlow starts; training keeps TensorFlow's default threads
        threads = configure_decoding_threads(
            cfg.decode.parallel_batches, cfg.decode.intra_op_threads
        )
    with contextlib.redirect_stdout(sys.stderr):  # TFDS prints as it prepares: stdout is the JSON
        splits, model, translator, train_ds = build(cfg, args)
    result = {"parameters": model.count_params()}
    if args.steps:
        result.update(training_figures(model, train_ds, args))
    if decodes_here:
        result.update(decoding_figures(model, translator, splits, cfg, args))
        result["decode_intra_op_threads"] = threads
    elif args.decode_sentences:  # training set TensorFlow's threads: decode in a new process
        result.update(decode_in_new_process(args))
    result["peak_rss_mb"] = max(peak_rss_mb(), result.pop("decoding_peak_rss_mb", 0))
    result["config"] = {
        "overrides": args.overrides,
        "steps": args.steps,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "split": args.split,
    }
    result["versions"] = versions()
    print(json.dumps(result, indent=2))
    return result


def training_figures(model, train_ds, args):
    """Median target and source tokens/s over `args.repeats` timed runs, and every run."""
    runs = [time_training(model, train_ds, args.warmup, args.steps) for _ in range(args.repeats)]
    result = {"train_runs": runs}
    for side in ("target", "source"):
        result[f"train_{side}_tokens_per_second"] = statistics.median(
            r[f"{side}_tokens"] / r["seconds"] for r in runs
        )
    result["train_target_tokens_per_cpu_second"] = statistics.median(
        r["target_tokens"] / r["cpu_seconds"] for r in runs
    )
    return result


def decoding_figures(model, translator, splits, cfg, args):
    """Greedy and beam sentences/s (medians and every run) and the sacreBLEU of each."""
    if args.run_dir:  # a trained model decodes realistic lengths; an untrained one runs long
        load_weights(model, RunFolder(args.run_dir).last_weights)
    sources, references = split_texts(splits[args.split], args.decode_sentences)
    result = {}
    for name, beam in (("greedy", 1), (f"beam{args.beam_size}", args.beam_size)):
        median, rates, translations = time_decoding(
            translator, sources, beam, args.repeats, cfg.decode.parallel_batches
        )
        result[f"{name}_sentences_per_second"] = median
        result[f"{name}_runs"] = rates
        result[f"{name}_{args.split}_bleu"] = corpus_scores(translations, references)["bleu"]
    result["decoded_with_trained_weights"] = bool(args.run_dir)
    result["decode_parallel_batches"] = cfg.decode.parallel_batches
    return result


def decode_in_new_process(args):
    """The decoding figures from `--steps 0` in a new process (TensorFlow's thread pool is set
    once a process, and decoding wants another than training: `seq2seq.threads`)."""
    argv = [
        sys.executable,
        __file__,
        "--steps",
        "0",
        "--repeats",
        str(args.repeats),
        "--decode-sentences",
        str(args.decode_sentences),
        "--beam-size",
        str(args.beam_size),
        "--split",
        args.split,
        "--workdir",
        args.workdir,
        *(["--run-dir", args.run_dir] if args.run_dir else []),
        *args.overrides,
    ]
    child = subprocess.run(argv, stdout=subprocess.PIPE, text=True, check=True)
    decoded = json.loads(child.stdout)
    keys = [k for k in decoded if k.startswith(("greedy", "beam", "decode"))]
    return {**{k: decoded[k] for k in keys}, "decoding_peak_rss_mb": decoded["peak_rss_mb"]}


def peak_rss_mb():
    """Peak resident memory of this process (Linux ru_maxrss is in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def versions():
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "cpu_count": psutil.cpu_count(),
    }


if __name__ == "__main__":
    main()
