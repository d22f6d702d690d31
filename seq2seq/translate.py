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
"""

import argparse
import sys

from seq2seq.savedmodel import (
    DecodeOptions,
    Progress,
    UsageError,
    add_batching_arguments,
    add_decoding_arguments,
    batch_translator,
    check_writable,
    find_export,
    load_export,
    one_line,
    quiet_tensorflow,
    read_lines,
    translate_sorted,
)
from seq2seq.threads import configure_decoding_threads


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m seq2seq.translate",
        description="Translate sentences (one per line) with an exported seq2seq model.",
    )
    parser.add_argument("--model", required=True, help="export folder or run folder")
    parser.add_argument("--input", help="UTF-8 text, one sentence per line (default: stdin)")
    parser.add_argument("--output", help="where translations go (default: stdout)")
    add_batching_arguments(parser)
    add_decoding_arguments(parser, n_best=True)
    parser.add_argument(
        "--scores", action="store_true", help="print `hypothesis<TAB>score` lines (n-best format)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return parser


def main(argv=None) -> int:
    """Runs the command; returns the exit code (2 for bad arguments, paths or input)."""
    args = build_parser().parse_args(argv)
    try:
        translate(args)
    except UsageError as error:
        print(f"seq2seq.translate: error: {error}", file=sys.stderr)
        return 2
    return 0


def translate(args):
    """Checks the arguments and the input, loads the model, translates, writes the output."""
    options = DecodeOptions(args.beam_size, args.alpha, args.n_best)
    if not options.baked:
        options.resolve()  # fail on a bad combination before loading anything
    export_dir = find_export(args.model)
    check_writable(args.output, "--output")
    sentences = read_lines(args.input)
    quiet_tensorflow()
    configure_decoding_threads(args.parallel_batches, args.intra_op_threads)
    scored = args.scores or (args.n_best or 1) > 1
    run_batch = batch_translator(load_export(export_dir), options, scores=scored)
    progress = None if args.quiet else Progress(len(sentences))
    results = translate_sorted(
        run_batch, sentences, args.batch_size, progress, args.parallel_batches
    )
    write_lines(args.output, format_results(results, scored))


def format_results(results, scored):
    """Output lines: the best translation per input, or every hypothesis with its score."""
    if not scored:
        return [one_line(hypotheses[0].text) for hypotheses in results]
    return [f"{one_line(h.text)}\t{h.score:.4f}" for hypotheses in results for h in hypotheses]


def write_lines(path, lines):
    """Writes lines (UTF-8, "\\n" ends every line) to a file, or to stdout when path is None."""
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    if path in (None, "-"):
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as error:
        raise UsageError(f"--output {path}: cannot write: {error.strerror}") from None


if __name__ == "__main__":
    sys.exit(main())
