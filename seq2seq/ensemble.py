"""`python -m seq2seq.ensemble RUN RUN ... --output DIR`: several trained runs as one model.

At every decoding step the members' next-token distributions are averaged; greedy and beam search
run on the average (`seq2seq.model.ensemble`). The runs must share their tokenizers (the same data
and `data.tokenizer.*` give the same ones). Each member brings the weights its run evaluated and
exported (the average of its last checkpoints, `best` or `last`). DIR becomes a run-like folder
whose export `seq2seq.translate` and `seq2seq.evaluate` take (`seq2seq.inference.trained`).
"""

import argparse
import sys

from seq2seq import cli


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m seq2seq.ensemble", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "items",
        nargs="+",
        metavar="RUN | decode.KEY=VALUE",
        help="finished run folders (2 or more), and decoding settings baked into the export, "
        "e.g. decode.beam_size=5 decode.alpha=1.0",
    )
    parser.add_argument("--output", required=True, help="the ensemble's folder")
    return parser


def ensemble(args):
    from seq2seq.inference.trained import build_ensemble

    runs = [item for item in args.items if "=" not in item]
    settings = [item.removeprefix("decode.") for item in args.items if "=" in item]
    return build_ensemble(runs, args.output, settings)


def main(argv=None):
    args = build_parser().parse_args(argv)
    cli.quiet_tensorflow()
    code, path = cli.run_tool("seq2seq.ensemble", ensemble, args)
    if path:
        print(path)
    return code


if __name__ == "__main__":
    sys.exit(main())
