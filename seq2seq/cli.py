"""What the command-line tools share: their options, their checks and their errors.

Standard library (and the YAML defaults) only: bad arguments are reported before TensorFlow
starts. The decoding defaults are `conf/decode/default.yaml`'s, the training defaults too.
"""

import argparse
import functools
import os
import sys
import tempfile
from pathlib import Path

from seq2seq.config import decode_defaults
from seq2seq.files import writable_dir
from seq2seq.run_folder import find_export


class UsageError(Exception):
    """A bad argument, path or input file; the tools print it as one line, exit code 2."""


def run_tool(prog, action, args):
    """Runs `action(args)`; a `UsageError` or `ValueError` (bad settings, an unreadable file)
    becomes one line on stderr and exit code 2. Returns the exit code and the action's result."""
    try:
        return 0, action(args)
    except (UsageError, ValueError, FileNotFoundError) as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2, None


def quiet_tensorflow():
    """Imports TensorFlow without its C++ start-up messages (CUDA drivers not found, oneDNN on,
    ...), which no setting silences in TensorFlow 2.19+ (tensorflow#100442): standard error is
    sent elsewhere while TensorFlow loads and looks for GPUs, and shown after all if that fails.
    Later C++ messages below FATAL are hidden too (`TF_CPP_MIN_LOG_LEVEL`, set here unless the
    environment sets it); TensorFlow's errors still reach the user as Python exceptions."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")  # loads the GPU libraries, or says they fail
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


@functools.cache
def defaults():
    """The decoding defaults (`decode.*`), from the YAML the training configuration uses."""
    return decode_defaults()


def check_output_folders(argv):
    """Exits with one line when the run (or sweep) folder that Hydra is about to create cannot
    be: Hydra creates it before the program runs, and reports a failure as a traceback."""
    sweep = "-m" in argv or "--multirun" in argv
    key = "hydra.sweep.dir" if sweep else "hydra.run.dir"
    given = [arg.split("=", 1)[1] for arg in argv if arg.startswith(f"{key}=")]
    try:
        if given:
            writable_dir(given[-1], key)
        elif not os.access(os.getcwd(), os.W_OK):
            raise OSError(f"{key}: the current folder {os.getcwd()} is not writable; set {key}=")
    except OSError as error:
        sys.exit(f"seq2seq.train: error: {error}")


def find_model(path):
    """The export of `--model` (an export folder or a run folder)."""
    try:
        return find_export(path)
    except FileNotFoundError as error:
        raise UsageError(f"--model {error}") from None


def check_writable(path, option):
    """Fails early (before a long translation) if `path` cannot be created or replaced.

    Raises:
        UsageError: The folder of `path` is missing or not writable, or `path` is a folder.
    """
    if path in (None, "-"):
        return
    path = Path(path).expanduser()
    folder = path.parent
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a folder")
    if not folder.is_dir():
        raise UsageError(f"{option} {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"{option} {path}: not writable")


def positive_int(text):
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_batching_arguments(parser):
    """--batch-size, --parallel-batches and --intra-op-threads, as `decode.batch_size`,
    `decode.parallel_batches` and `decode.intra_op_threads` (`seq2seq.inference.threads`)."""
    decode = defaults()
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=decode.batch_size,
        help=f"sentences a batch (default: {decode.batch_size})",
    )
    parser.add_argument(
        "--parallel-batches",
        type=positive_int,
        default=decode.parallel_batches,
        help="batches decoded at once, each on its own thread "
        f"(default: {decode.parallel_batches})",
    )
    parser.add_argument(
        "--intra-op-threads",
        type=positive_int,
        help="TensorFlow threads an operation may split over (default: cores / --parallel-batches;"
        " TF_NUM_INTRAOP_THREADS wins)",
    )


def add_decoding_arguments(parser, *, n_best):
    """--beam-size, --alpha (and --n-best): unset keeps the decoding baked into the export."""
    group = parser.add_argument_group(
        "decoding (any of these switches to the translate_options signature)"
    )
    default = "--n-best, or 1" if n_best else "1"
    group.add_argument("--beam-size", type=positive_int, help=f"1 = greedy (default: {default})")
    group.add_argument(
        "--alpha",
        type=float,
        help=f"GNMT length penalty exponent (default: {defaults().alpha})",
    )
    if n_best:
        group.add_argument("--n-best", type=positive_int, help="hypotheses per input (default: 1)")
    group.add_argument(
        "--min-length", type=int, help="EOS is forbidden before this many target pieces"
    )
    group.add_argument(
        "--no-repeat-ngram-size", type=int, help="no n-gram of this many pieces twice"
    )
    group.add_argument("--prefix", help="every translation starts with this text")


def decode_options(args):
    """The `DecodeOptions` of `add_decoding_arguments`'s options, checked.

    Raises:
        ValueError: a combination or value out of range (the options are named).
    """
    from seq2seq.inference.settings import DecodeOptions

    options = DecodeOptions(
        args.beam_size,
        args.alpha,
        getattr(args, "n_best", None),
        defaults().alpha,
        min_length=args.min_length,
        no_repeat_ngram_size=args.no_repeat_ngram_size,
        prefix=args.prefix,
    )
    if not options.baked:
        options.resolve()
        options.constraints()
    return options


def add_sampling_arguments(parser):
    """--sample and its --temperature, --top-k, --top-p and --seed (`translate_sample`)."""
    group = parser.add_argument_group("sampling (the translate_sample signature)")
    group.add_argument("--sample", action="store_true", help="sample one translation an input")
    group.add_argument("--temperature", type=float, help="0 = greedy (default: 1)")
    group.add_argument("--top-k", type=int, help="sample from the k best (default: 0 = all)")
    group.add_argument(
        "--top-p", type=float, help="nucleus: the smallest set of mass p (default: 1 = all)"
    )
    group.add_argument("--seed", type=int, help="same seed, same samples (default: 0)")
