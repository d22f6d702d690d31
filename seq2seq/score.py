"""`python -m seq2seq.score --model M --source F --target F`: score given translations.

Writes one line per sentence pair, in input order: the score of the target given the source,
its log-probability (pieces and EOS) divided by the GNMT length penalty with the export's alpha,
the number `seq2seq.translate --scores` prints for its own hypotheses. With --per-token, the
line is `score<TAB>log-prob of each piece, EOS last, space-separated`. Uses the export's `score`
signature; needs only TensorFlow, tensorflow_text and the export.
"""

import argparse
import sys

from seq2seq import cli
from seq2seq.inference.batching import Progress, translate_sorted
from seq2seq.inference.exported import load_export, pair_length, run_pairs
from seq2seq.inference.threads import configure_decoding_threads
from seq2seq.lines import TextFileError, iter_pairs, write_lines


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m seq2seq.score",
        description="Score translations (one per line) of sources with an exported model.",
    )
    parser.add_argument("--model", required=True, help="export folder or run folder")
    parser.add_argument("--source", required=True, help="UTF-8 sources, one a line")
    parser.add_argument("--target", required=True, help="their translations, line by line")
    parser.add_argument("--output", help="where the scores go (default: stdout)")
    parser.add_argument(
        "--per-token", action="store_true", help="also print each piece's log-probability"
    )
    cli.add_batching_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return parser


def main(argv=None) -> int:
    """Runs the command; returns the exit code (2 for bad arguments, paths or input)."""
    args = build_parser().parse_args(argv)
    code, _ = cli.run_tool("seq2seq.score", score, args)
    return code


def score(args):
    """Checks the arguments and the files, loads the model, scores, writes the lines."""
    export_dir = cli.find_model(args.model)
    cli.check_writable(args.output, "--output")
    try:
        pairs = list(iter_pairs(args.source, args.target))
    except TextFileError as error:
        raise cli.UsageError(str(error)) from None
    cli.quiet_tensorflow()
    configure_decoding_threads(args.parallel_batches, args.intra_op_threads)
    model = load_export(export_dir)

    def score_batch(batch):
        out = {k: v.numpy() for k, v in run_pairs(model, "score", batch).items()}
        rows = zip(out["score"], out["token_log_probs"], out["lengths"])
        return [format_line(s, tokens[:n], args.per_token) for s, tokens, n in rows]

    progress = None if args.quiet else Progress(len(pairs))
    lines = translate_sorted(
        score_batch, pairs, args.batch_size, progress, args.parallel_batches, length=pair_length
    )
    try:
        write_lines(args.output or "-", lines)
    except OSError as error:
        raise cli.UsageError(f"--output {args.output}: cannot write: {error.strerror}") from None


def format_line(score, token_log_probs, per_token):
    if not per_token:
        return f"{score:.4f}"
    return f"{score:.4f}\t" + " ".join(f"{value:.4f}" for value in token_log_probs)


if __name__ == "__main__":
    sys.exit(main())
