"""Text files of one sentence a line: the one rule for reading and writing them.

Every text file the project reads (corpora, `translate` and `evaluate` inputs, SentencePiece's
temporary files) is split by `iter_lines`, and every line it writes goes through `one_line`:

- a line ends at ``\\n``, ``\\r\\n`` or a lone ``\\r`` (LF, CRLF and old-Mac CR files alike);
- nothing else ends a line: ``\\x0b``, ``\\x0c``, ``\\x1c``-``\\x1e``, ``\\x85``, ``\\u2028`` and
  ``\\u2029``, which ``str.splitlines`` also splits on, stay inside their line as text (they occur
  in real corpora, and splitting on them would silently break the alignment of two files);
- a UTF-8 byte-order mark at the start of a file is dropped; gzip files are read decompressed;
- invalid UTF-8 and NUL bytes are refused, naming the file and the line.

Standard library only.
"""

import gzip
import io
import itertools
import os
import sys
from collections.abc import Iterator
from typing import BinaryIO

from seq2seq.files import atomic_write_bytes

_GZIP_MAGIC = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"
_MISSING = object()
STDIN = "-"


class TextFileError(ValueError):
    """A text file that cannot be read as lines; the message names the file (and the line)."""


def resolve(prefix: str, language: str) -> str:
    """Finds ``{prefix}.{language}`` or ``{prefix}.{language}.gz`` (fairseq/Moses naming).

    Returns:
        The absolute path of whichever file exists (the plain file wins if both do).

    Raises:
        FileNotFoundError: Neither file exists; the message names both paths tried.
    """
    plain = os.path.abspath(os.path.expanduser(f"{prefix}.{language}"))
    tried = (plain, plain + ".gz")
    for path in tried:
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f"missing data file: tried {tried[0]} and {tried[1]}")


def _open(path) -> BinaryIO:
    """`path` opened for binary reading (stdin for "-"), decompressed if it is gzip."""
    if str(path) == STDIN:
        data = sys.stdin.buffer.read()
        return io.BytesIO(gzip.decompress(data) if data.startswith(_GZIP_MAGIC) else data)
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == _GZIP_MAGIC else open(path, "rb")


def _raw_lines(f: BinaryIO) -> Iterator[bytes]:
    for chunk in f:  # up to and including each "\n"
        yield from chunk.removesuffix(b"\n").removesuffix(b"\r").split(b"\r")


def _decode(raw: bytes, name: str, number: int) -> str:
    if b"\x00" in raw:
        raise TextFileError(f"{name}, line {number}: contains a NUL byte (binary file?)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise TextFileError(
            f"{name}, line {number}: invalid UTF-8 at byte {error.start} of the line"
        ) from None


def iter_lines(path) -> Iterator[str]:
    """Yields the lines of a plain or gzip text file (or of stdin for "-"), streamed.

    Empty and whitespace-only lines are yielded too: callers filter them, so that line N of two
    parallel files stays aligned.

    Raises:
        TextFileError: the file is missing, unreadable or a broken gzip file, or a line has a NUL
            byte or invalid UTF-8 (the message names the file and the 1-based line number).
    """
    name = "<stdin>" if str(path) == STDIN else str(path)
    try:
        with _open(path) as f:
            for number, raw in enumerate(_raw_lines(f), start=1):
                yield _decode(raw.removeprefix(_BOM) if number == 1 else raw, name, number)
    except FileNotFoundError:
        raise TextFileError(f"{name}: no such file") from None
    except (EOFError, gzip.BadGzipFile) as error:
        raise TextFileError(f"{name}: broken gzip file: {error}") from None
    except OSError as error:
        raise TextFileError(f"{name}: cannot read: {error.strerror or error}") from None


def read_lines(path=None) -> list[str]:
    """Every line of a file, or of stdin when `path` is None or "-" (see `iter_lines`)."""
    return list(iter_lines(STDIN if path is None else path))


def iter_pairs(source_path: str, target_path: str) -> Iterator[tuple[str, str]]:
    """Yields aligned ``(source_line, target_line)`` pairs of two parallel files.

    Raises:
        TextFileError: A file is empty, the files differ in line count (the message names both
            files and counts), or `iter_lines` refuses one of them.
    """
    sources, targets = iter_lines(source_path), iter_lines(target_path)
    count = 0
    for source, target in itertools.zip_longest(sources, targets, fillvalue=_MISSING):
        if source is _MISSING or target is _MISSING:
            source_count = count + (source is not _MISSING) + sum(1 for _ in sources)
            target_count = count + (target is not _MISSING) + sum(1 for _ in targets)
            raise TextFileError(
                f"line count mismatch: {source_path} has {source_count} lines "
                f"but {target_path} has {target_count}"
            )
        count += 1
        yield source, target
    if count == 0:
        raise TextFileError(f"{source_path} is empty")


def one_line(text: str) -> str:
    """`text` as one line: the line ends `iter_lines` splits on become spaces."""
    return text.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")


def write_lines(path, lines) -> None:
    """Writes each of `lines` (through `one_line`) and a "\\n", UTF-8, to stdout ("-") or to a
    file, atomically."""
    data = "".join(one_line(line) + "\n" for line in lines).encode("utf-8")
    if str(path) == STDIN:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    atomic_write_bytes(path, data)
