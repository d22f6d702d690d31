"""`python -m seq2seq.translate --model RUN_OR_EXPORT`: translate text, one sentence per line.

Reads UTF-8 sentences (stdin or --input), translates them with the exported SavedModel in
length-sorted batches and writes one translation per line, in input order (stdout or --output).
Empty lines give empty lines. Needs only TensorFlow, tensorflow_text and the export: the
training code is not imported, nor any Keras module beyond those `import tensorflow` loads.

Output formats:
    default: one translation per input line.
    --n-best N (N > 1) or --scores: for every input, its hypotheses best first, one per line as
    `hypothesis<TAB>score` (score: log-probability divided by the GNMT length penalty; 0.0 for
    blank inputs). There are N lines per input with --n-best N and beam search (a greedy search
    returns one); --scores alone prints the export's baked-in n-best list.
    --alignments: each line gets `<TAB>alignment` appended, Pharaoh `i-j` pairs of source word i
    and target word j (docs/decoding.md).

Decoding: --min-length, --no-repeat-ngram-size and --prefix constrain the search (with the
beam settings of --beam-size/--alpha/--n-best); --sample draws one translation an input instead
(--temperature, --top-k, --top-p, --seed).
"""

import argparse
import sys

from seq2seq import cli
from seq2seq.inference.batching import Progress, translate_sorted
from seq2seq.inference.exported import (
    batch_aligner,
    batch_sampler,
    batch_translator,
    load_export,
    pair_length,
)
from seq2seq.inference.settings import SampleOptions
from seq2seq.inference.threads import configure_decoding_threads
from seq2seq.lines import read_lines, write_lines


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m seq2seq.translate",
        description="Translate sentences (one per line) with an exported seq2seq model.",
    )
    parser.add_argument("--model", required=True, help="export folder or run folder")
    parser.add_argument("--input", help="UTF-8 text, one sentence per line (default: stdin)")
    parser.add_argument("--output", help="where translations go (default: stdout)")
    cli.add_batching_arguments(parser)
    cli.add_decoding_arguments(parser, n_best=True)
    cli.add_sampling_arguments(parser)
    parser.add_argument(
        "--scores", action="store_true", help="print `hypothesis<TAB>score` lines (n-best format)"
    )
    parser.add_argument(
        "--alignments", action="store_true", help="append `<TAB>i-j ...` word alignments"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return parser


def main(argv=None) -> int:
    """Runs the command; returns the exit code (2 for bad arguments, paths or input)."""
    args = build_parser().parse_args(argv)
    code, _ = cli.run_tool("seq2seq.translate", translate, args)
    return code


def translate(args):
    """Checks the arguments and the input, loads the model, translates, writes the output."""
    options = cli.decode_options(args)  # fail on a bad combination before loading anything
    sample = _sample_options(args, options)
    export_dir = cli.find_model(args.model)
    cli.check_writable(args.output, "--output")
    sentences = read_lines(args.input)
    cli.quiet_tensorflow()
    configure_decoding_threads(args.parallel_batches, args.intra_op_threads)
    scored = args.scores or (args.n_best or 1) > 1
    model = load_export(export_dir)
    if sample:
        run_batch = batch_sampler(model, sample)
    else:
        run_batch = batch_translator(model, options, scores=scored)
    progress = None if args.quiet else Progress(len(sentences))
    results = translate_sorted(
        run_batch, sentences, args.batch_size, progress, args.parallel_batches
    )
    lines = format_results(results, scored)
    if args.alignments:
        lines = _with_alignments(model, sentences, results, lines, args)
    try:
        write_lines(args.output or "-", lines)
    except OSError as error:
        raise cli.UsageError(f"--output {args.output}: cannot write: {error.strerror}") from None


def _sample_options(args, options):
    """The checked `SampleOptions` with --sample, else None."""
    given = {
        name: value
        for name, value in vars(args).items()
        if name in ("temperature", "top_k", "top_p", "seed") and value is not None
    }
    if not args.sample:
        if given:
            option = "--" + next(iter(given)).replace("_", "-")
            raise cli.UsageError(f"{option} needs --sample")
        return None
    if not options.baked or args.scores:
        raise cli.UsageError(
            "--sample draws one translation an input with the export's constraints: drop "
            "--beam-size, --alpha, --n-best, --min-length, --no-repeat-ngram-size, --prefix "
            "and --scores"
        )
    return SampleOptions(**given).check()


def _with_alignments(model, sentences, results, lines, args):
    """`lines` (one a hypothesis) with each hypothesis's alignment appended after a tab."""
    pairs = [(s, h.text) for s, hypotheses in zip(sentences, results) for h in hypotheses]
    if len(pairs) != len(lines):  # one line an input: its best hypothesis
        pairs = [(s, hypotheses[0].text) for s, hypotheses in zip(sentences, results)]
    alignments = translate_sorted(
        batch_aligner(model), pairs, args.batch_size, parallel=1, length=pair_length
    )
    return [f"{line}\t{alignment}" for line, alignment in zip(lines, alignments)]


def format_results(results, scored):
    """Output lines: the best translation per input, or every hypothesis with its score."""
    if not scored:
        return [hypotheses[0].text for hypotheses in results]
    return [f"{h.text}\t{h.score:.4f}" for hypotheses in results for h in hypotheses]


if __name__ == "__main__":
    sys.exit(main())
