"""Running an exported translator: find and load it, read sentences, translate them in batches.

Shared by `python -m seq2seq.translate` and `python -m seq2seq.evaluate`. Only the standard
library is imported at module level; TensorFlow and tensorflow_text are imported when a model is
loaded. So bad arguments are reported before TensorFlow starts, and the translate command imports
neither the training code nor any Keras module beyond those `import tensorflow` loads itself.

Sentences are sorted by length (characters) before batching, so a batch holds sentences of
similar length and little padding; results come back in input order. Decoding is
batch-invariant (see `seq2seq.decoding`), so the batching does not change any translation.
"""

import argparse
import collections
import concurrent.futures
import dataclasses
import gzip
import itertools
import os
import sys
import time
from pathlib import Path
from typing import NamedTuple

EXPORT_FILE = "saved_model.pb"
CONFIG_FILE = "config.yaml"
DEFAULT_ALPHA = 0.6  # the project's default length penalty (conf/decode/default.yaml)
DEFAULT_BATCH_SIZE = 64  # decode.batch_size in conf/decode/default.yaml
DEFAULT_PARALLEL_BATCHES = 2  # decode.parallel_batches in conf/decode/default.yaml
_BOM = "\ufeff"
_ASCII_SPACE = " \t\n\r\f\v"  # what tf.strings.strip removes inside the export


class UsageError(Exception):
    """A bad argument, path or input file; the entry points print it as one line, exit code 2."""


class Hypothesis(NamedTuple):
    """One translation; `score` is None when the signature returns no scores."""

    text: str
    score: float | None = None


# === Paths ===


def find_export(path) -> Path:
    """Returns the SavedModel folder of an export folder or of a run folder (`<run>/export`).

    Raises:
        UsageError: `path` does not exist or holds no `saved_model.pb` (directly or in export/).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise UsageError(f"--model {path}: no such file or directory")
    for candidate in (path, path / "export"):
        if (candidate / EXPORT_FILE).is_file():
            return candidate
    raise UsageError(
        f"--model {path}: not an export folder (no {EXPORT_FILE}) nor a run folder "
        f"(no export/{EXPORT_FILE})"
    )


def find_run_dir(export_dir) -> Path | None:
    """The run folder (holding config.yaml) of an export: the export folder or its parent."""
    export_dir = Path(export_dir)
    for candidate in (export_dir, export_dir.parent):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    return None


# === Text files ===


def read_lines(path=None) -> list[str]:
    """Reads UTF-8 lines from a plain or gzip file (or stdin when `path` is None or "-").

    Lines are split on "\\n" only (not on the other separators `str.splitlines` knows), a
    trailing "\\r" and a leading byte-order mark are removed; empty lines are kept.

    Raises:
        UsageError: The file is missing or unreadable, or a line is not valid UTF-8 (the message
            names the file and the 1-based line number).
    """
    name = "<stdin>" if path in (None, "-") else str(path)
    try:
        data = sys.stdin.buffer.read() if name == "<stdin>" else Path(path).read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{name}: no such file") from None
    except OSError as error:
        raise UsageError(f"{name}: cannot read: {error.strerror}") from None
    if data.startswith(b"\x1f\x8b"):
        data = _gunzip(data, name)
    raw_lines = data.split(b"\n")
    if raw_lines[-1] == b"":
        raw_lines.pop()  # the newline that ends the last line does not start a new one
    lines = [_decode(raw.removesuffix(b"\r"), name, n) for n, raw in enumerate(raw_lines, 1)]
    if lines:
        lines[0] = lines[0].removeprefix(_BOM)
    return lines


def _gunzip(data: bytes, name: str) -> bytes:
    try:
        return gzip.decompress(data)
    except (OSError, EOFError) as error:
        raise UsageError(f"{name}: broken gzip file: {error}") from None


def _decode(raw: bytes, name: str, number: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UsageError(
            f"{name}, line {number}: invalid UTF-8 at byte {error.start} of the line"
        ) from None


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


def one_line(text: str) -> str:
    """Replaces line breaks inside a translation by spaces, so output stays line-aligned."""
    return text.replace("\r", " ").replace("\n", " ")


def is_blank(sentence: str) -> bool:
    """True for inputs the export translates to "" (empty after stripping ASCII whitespace)."""
    return not sentence.strip(_ASCII_SPACE)


# === Decoding options ===


@dataclasses.dataclass(frozen=True)
class DecodeOptions:
    """Decoding chosen at run time. All None: the settings baked into the export are used.

    When any is set, the `translate_options` signature runs with: `beam_size` (default: n_best),
    `alpha` (default 0.6) and `n_best` (default 1).
    """

    beam_size: int | None = None
    alpha: float | None = None
    n_best: int | None = None

    @property
    def baked(self) -> bool:
        return self.beam_size is None and self.alpha is None and self.n_best is None

    def resolve(self) -> tuple[int, float, int]:
        """(beam_size, alpha, n_best) with defaults filled in.

        Raises:
            UsageError: The combination is invalid.
        """
        n_best = 1 if self.n_best is None else self.n_best
        beam_size = n_best if self.beam_size is None else self.beam_size
        alpha = DEFAULT_ALPHA if self.alpha is None else self.alpha
        if beam_size < 1 or n_best < 1:
            raise UsageError("--beam-size and --n-best must be >= 1")
        if n_best > beam_size:
            raise UsageError(f"--n-best {n_best} needs --beam-size >= {n_best}")
        if alpha < 0:
            raise UsageError(f"--alpha must be >= 0, got {alpha}")
        if self.alpha is not None and beam_size == 1:
            raise UsageError("--alpha has no effect with greedy search: add --beam-size > 1")
        return beam_size, alpha, n_best

    def describe(self) -> dict:
        """The settings for reports: the signature used and, if chosen, the options."""
        if self.baked:
            return {"signature": "serving_default"}
        beam_size, alpha, n_best = self.resolve()
        return {
            "signature": "translate_options",
            "beam_size": beam_size,
            "alpha": alpha,
            "n_best": n_best,
        }


# === Command-line pieces ===


def add_batching_arguments(parser):
    """--batch-size, --parallel-batches and --intra-op-threads, as `decode.batch_size`,
    `decode.parallel_batches` and `decode.intra_op_threads` (`seq2seq.threads`)."""
    parser.add_argument(
        "--batch-size", type=positive_int, default=DEFAULT_BATCH_SIZE,
        help=f"sentences a batch (default: {DEFAULT_BATCH_SIZE})",
    )  # fmt: skip
    parser.add_argument(
        "--parallel-batches", type=positive_int, default=DEFAULT_PARALLEL_BATCHES,
        help="batches decoded at once, each on its own thread "
        f"(default: {DEFAULT_PARALLEL_BATCHES})",
    )  # fmt: skip
    parser.add_argument(
        "--intra-op-threads", type=positive_int,
        help="TensorFlow threads an operation may split over (default: cores / --parallel-batches;"
        " TF_NUM_INTRAOP_THREADS wins)",
    )  # fmt: skip


def add_decoding_arguments(parser, *, n_best):
    """--beam-size, --alpha (and --n-best): unset keeps the decoding baked into the export."""
    group = parser.add_argument_group(
        "decoding (any of these switches to the translate_options signature)"
    )
    default = "--n-best, or 1" if n_best else "1"
    group.add_argument("--beam-size", type=positive_int, help=f"1 = greedy (default: {default})")
    group.add_argument("--alpha", type=float, help="GNMT length penalty exponent (default: 0.6)")
    if n_best:
        group.add_argument("--n-best", type=positive_int, help="hypotheses per input (default: 1)")


def positive_int(text):
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


# === Loading and translating ===


def quiet_tensorflow():
    """Hides TensorFlow's C++ info logs (call before TensorFlow is imported)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def load_export(export_dir):
    """Loads an exported translator; tensorflow_text is imported first (SentencePiece op)."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    export_dir = Path(export_dir)
    parked = export_dir.with_name(f".{export_dir.name}.old")  # see files.replace_dir
    if not export_dir.exists() and parked.exists():  # killed while replacing the export
        export_dir = parked
    return tf.saved_model.load(str(export_dir))


def batch_translator(model, options: DecodeOptions, *, scores=False):
    """Returns a function: list of sentences -> list (per sentence) of `Hypothesis` lists.

    Baked settings use `serving_default` (one hypothesis, no score) or, with `scores`,
    `translate_nbest`; chosen settings use `translate_options`. Blank inputs get the empty
    translation with score 0.0 (the export skips them; its score is meaningless).

    Raises:
        UsageError: The export lacks the signature needed, or the options are invalid.
    """
    import tensorflow as tf

    if options.baked and not scores:
        serve = _signature(model, "serving_default")

        def translate_1best(batch):
            out = serve(text=tf.constant(batch, tf.string))["translation"].numpy()
            return [[Hypothesis(text.decode("utf-8"))] for text in out]

        return translate_1best
    if options.baked:
        signature, settings = _signature(model, "translate_nbest"), {}
    else:
        hint = " (exported before it existed): re-export it, or drop --beam-size/--alpha/--n-best"
        signature = _signature(model, "translate_options", hint)
        beam_size, alpha, n_best = options.resolve()
        settings = {
            "beam_size": tf.constant(beam_size, tf.int32),
            "alpha": tf.constant(alpha, tf.float32),
            "n_best": tf.constant(n_best, tf.int32),
        }

    def translate_nbest(batch):
        out = signature(text=tf.constant(batch, tf.string), **settings)
        return _hypotheses(batch, out["translations"].numpy(), out["scores"].numpy())

    return translate_nbest


def _signature(model, name, hint=""):
    if name not in model.signatures:
        raise UsageError(f"the export has no {name!r} signature{hint}")
    return model.signatures[name]


def _hypotheses(batch, translations, scores):
    return [
        [
            Hypothesis(text.decode("utf-8"), 0.0 if is_blank(source) else float(score))
            for text, score in zip(row_texts, row_scores)
        ]
        for source, row_texts, row_scores in zip(batch, translations, scores)
    ]


def translate_sorted(translate_batch, sentences, batch_size, on_batch=None, parallel=1):
    """Translates in batches of similar length; returns the results in input order.

    Args:
        translate_batch: list of sentences -> list of results, one per sentence.
        sentences: the sentences, any order.
        batch_size: sentences per call of `translate_batch`.
        on_batch: optional callback, called after each batch with the number of sentences done.
        parallel: batches in flight at once, each call on its own thread. TensorFlow runs them
            side by side: one search alone leaves a CPU core idle much of the time (beam 5 on
            2 cores: 118.5 -> 133.6 sentences/s with 2). Results are the same, in the same order.
    """
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))  # stable sort
    chunks = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    results = [None] * len(sentences)
    done = 0
    for chunk, outputs in zip(chunks, _map_in_order(translate_batch, sentences, chunks, parallel)):
        for i, result in zip(chunk, outputs):
            results[i] = result
        done += len(chunk)
        if on_batch:
            on_batch(done)
    return results


def _map_in_order(translate_batch, sentences, chunks, parallel):
    """`translate_batch` of each chunk's sentences, in chunk order, `parallel` at a time.

    The first batch runs alone on the calling thread: a `tf.function` traces there, where
    Keras's settings (the dtype policy among them) are set; they are thread-local.
    """
    texts = ([sentences[i] for i in chunk] for chunk in chunks)
    if parallel <= 1:
        yield from map(translate_batch, texts)
        return
    for first in itertools.islice(texts, 1):
        yield translate_batch(first)
    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        pending = collections.deque()
        for batch in texts:
            pending.append(pool.submit(translate_batch, batch))
            if len(pending) >= parallel:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


class Progress:
    """`on_batch` callback printing sentences done and sentences/s every `every` batches.

    Short inputs (fewer than `every` batches) print nothing; long ones also get a final line.
    """

    def __init__(self, total, every=10, stream=None):
        self.total = total
        self.every = every
        self.stream = stream or sys.stderr
        self.batches = 0
        self.start = time.monotonic()

    def __call__(self, done):
        self.batches += 1
        last = done == self.total
        if self.batches % self.every == 0 or (last and self.batches > self.every):
            rate = done / max(time.monotonic() - self.start, 1e-9)
            print(
                f"translated {done}/{self.total} sentences, {rate:.1f} sentences/s",
                file=self.stream,
                flush=True,
            )
