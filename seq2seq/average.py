"""`python -m seq2seq.average`: the element-wise average of a finished run's checkpoints.

    python -m seq2seq.average RUN --last 5
    python -m seq2seq.average RUN/checkpoints/epoch_008.weights.h5 ... --output avg.weights.h5

Averages the last N epoch checkpoints of RUN (`epoch_NNN.weights.h5`, as many as
`trainer.keep_checkpoints` kept), or the weights files given, all of one run. The result is a
weights file (default `RUN/checkpoints/average_last_N.weights.h5`), written atomically. With
`--export DIR`, DIR also becomes a run-like folder (config.yaml, tokenizers/, export/) of the
averaged weights, which `seq2seq.evaluate --model DIR` and `seq2seq.translate` take.
"""

import argparse
import sys
from pathlib import Path

from seq2seq import cli
from seq2seq.files import writable_dir
from seq2seq.run_folder import RunFolder


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m seq2seq.average", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "items", nargs="+", metavar="RUN | FILE", help="a run folder, or its weights files"
    )
    parser.add_argument(
        "--last", type=cli.positive_int, help="with RUN: average its last N epoch checkpoints"
    )
    parser.add_argument("--output", help="the averaged weights file")
    parser.add_argument("--export", help="also write a run-like folder with the SavedModel here")
    return parser


def checkpoints_to_average(args):
    """(run folder, weights files, output file) of the arguments.

    Raises:
        cli.UsageError: a missing file or run, a run without enough epoch checkpoints, or
            files of different runs.
    """
    first = Path(args.items[0])
    if first.is_dir():
        if len(args.items) > 1 or not args.last:
            raise cli.UsageError("give one RUN folder with --last N, or weights files")
        folder = RunFolder(first)
        paths = folder.last_epoch_weights(args.last)
        if len(paths) < args.last:
            raise cli.UsageError(
                f"--last {args.last}: {folder.checkpoints} has {len(paths)} epoch checkpoints"
            )
        output = args.output or folder.checkpoints / f"average_last_{args.last}.weights.h5"
        return folder, paths, Path(output)
    if args.last:
        raise cli.UsageError("--last goes with a RUN folder, not with weights files")
    paths = [Path(item) for item in args.items]
    for path in paths:
        if not path.is_file():
            raise cli.UsageError(f"{path}: no such weights file")
    runs = {path.resolve().parent.parent for path in paths}
    if len(runs) > 1:
        raise cli.UsageError(f"the weights files come from {len(runs)} run folders: give one's")
    folder = RunFolder(runs.pop())
    if not folder.config.is_file():
        raise cli.UsageError(f"{paths[0]}: not in a run folder's checkpoints (no {folder.config})")
    if not args.output:
        raise cli.UsageError("--output FILE is needed with weights files")
    return folder, paths, Path(args.output)


def average(args):
    folder, paths, output = checkpoints_to_average(args)
    cli.check_writable(output, "--output")
    if args.export:
        try:
            writable_dir(args.export, "--export")
        except OSError as error:
            raise cli.UsageError(str(error)) from None
    from seq2seq.inference.trained import export_run_like, load_run_model
    from seq2seq.model.weights import save_weights
    from seq2seq.training.checkpoints import average_checkpoints

    model, tokenizers = load_run_model(folder)
    average_checkpoints(model, paths)
    save_weights(model, output)
    if args.export:
        export_run_like(folder, model, tokenizers, args.export)
    return output


def main(argv=None):
    args = build_parser().parse_args(argv)
    cli.quiet_tensorflow()
    code, path = cli.run_tool("seq2seq.average", average, args)
    if path:
        print(path)
    return code


if __name__ == "__main__":
    sys.exit(main())
