"""`python -m seq2seq.serve --model RUN_OR_EXPORT`: serve an export over HTTP.

    python -m seq2seq.serve --model runs/my_run --port 8501 --name translator

Serves TensorFlow Serving's REST API (`/v1/models/<name>`, `.../metadata`, `...:predict`),
`POST /v1/translate` and a web page at `/` (docs/serving.md). Binds 127.0.0.1 unless `--host`
says otherwise. SIGTERM (or Ctrl-C) finishes the requests in flight, then exits 0. Needs the
`serve` extra (`pip install seq2seq-nmt[serve]`), TensorFlow, tensorflow_text and the export only.
"""

import argparse
import logging
import sys

from seq2seq import cli


def build_parser() -> argparse.ArgumentParser:
    decode = cli.defaults()
    parser = argparse.ArgumentParser(
        prog="python -m seq2seq.serve",
        description="Serve an exported seq2seq model: TensorFlow Serving's REST API and a page.",
    )
    parser.add_argument("--model", required=True, help="export folder or run folder")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8501, help="port (default: 8501)")
    parser.add_argument("--name", default="translator", help="model name in the URLs")
    batching = parser.add_argument_group("dynamic batching")
    batching.add_argument(
        "--max-batch-size",
        type=cli.positive_int,
        default=decode.batch_size,
        help=f"sentences a decoding call at most (default: {decode.batch_size})",
    )
    batching.add_argument(
        "--max-wait-ms",
        type=float,
        default=5.0,
        help="how long a sentence may wait for others to share its call (default: 5)",
    )
    batching.add_argument(
        "--parallel-batches",
        type=cli.positive_int,
        default=1,
        help="calls decoded at once, each on its own thread (default: 1, which splits each"
        " operation over the cores: a lone client is answered sooner, docs/serving.md)",
    )
    batching.add_argument(
        "--intra-op-threads",
        type=cli.positive_int,
        help="TensorFlow threads an operation may split over (default: cores / --parallel-batches)",
    )
    limits = parser.add_argument_group("limits (larger requests get 413)")
    limits.add_argument("--max-sentences", type=cli.positive_int, default=256, help="a request")
    limits.add_argument(
        "--max-body-bytes", type=cli.positive_int, default=2**20, help="a request (default: 1 MiB)"
    )
    limits.add_argument("--max-beam-size", type=cli.positive_int, default=32, help="and n-best")
    return parser


def main(argv=None) -> int:
    """Runs the server until SIGTERM; returns the exit code (2 for bad arguments)."""
    args = build_parser().parse_args(argv)
    code, _ = cli.run_tool("seq2seq.serve", serve, args)
    return code


def serve(args):
    if args.max_wait_ms < 0 or not 0 <= args.port <= 65535:
        raise cli.UsageError("--max-wait-ms must be >= 0 and --port within 0..65535")
    export_dir = cli.find_model(args.model)
    try:
        from seq2seq.inference import server
        from seq2seq.inference.service import TranslationService
    except ImportError as error:
        raise cli.UsageError(f"{error.name} is missing: pip install 'seq2seq-nmt[serve]'") from None
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    cli.quiet_tensorflow()
    from seq2seq.inference.exported import load_export
    from seq2seq.inference.threads import configure_decoding_threads

    configure_decoding_threads(args.parallel_batches, args.intra_op_threads)
    service = TranslationService(
        load_export(export_dir),
        max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms,
        workers=args.parallel_batches,
        max_beam_size=args.max_beam_size,
        default_alpha=cli.defaults().alpha,
    )
    service.warm_up()
    app = server.create_app(
        service,
        name=args.name,
        export_dir=export_dir,
        max_sentences=args.max_sentences,
        max_body_bytes=args.max_body_bytes,
    )
    server.run(app, host=args.host, port=args.port)


if __name__ == "__main__":
    sys.exit(main())
