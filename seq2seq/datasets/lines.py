"""Line-aligned parallel text files: locate, open (plain or gzip), validate and pair.

Lines are split on ``\\n`` only. ``str.splitlines`` is avoided on purpose: it also splits on
``\\x0b``, ``\\x0c``, ``\\x1c``-``\\x1e``, ``\\x85``, ``\\u2028`` and ``\\u2029``, which occur in
real corpora and would silently break the alignment of two files.
"""

import gzip
import itertools
import os
from collections.abc import Iterator
from typing import BinaryIO

_GZIP_MAGIC = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"
_MISSING = object()


def resolve(prefix: str, language: str) -> str:
    """Finds ``{prefix}.{language}`` or ``{prefix}.{language}.gz`` (fairseq/Moses naming).

    Args:
        prefix: Path prefix, e.g. ``data/train``.
        language: Language suffix, e.g. ``de``.

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


def _open(path: str) -> BinaryIO:
    """Opens ``path`` for binary reading, decompressing it if it starts with the gzip magic."""
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == _GZIP_MAGIC else open(path, "rb")


def _decode(raw: bytes, path: str, number: int) -> str:
    """Decodes one line, rejecting NUL bytes and invalid UTF-8 with the file and line named."""
    if b"\x00" in raw:
        raise ValueError(f"{path}, line {number}: contains a NUL byte (binary file?)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path}, line {number}: invalid UTF-8 at byte {error.start} of the line"
        ) from None


def iter_lines(path: str, *, clean: bool) -> Iterator[str]:
    """Yields the lines of a plain or gzip text file, without their trailing ``\\n``.

    Empty and whitespace-only lines are yielded too: callers filter them, so line N of two
    parallel files stays aligned.

    Args:
        path: File to read.
        clean: Also strip a UTF-8 byte-order mark at the start of the file and a ``\\r``
            before each ``\\n`` (Windows line ends). With ``False`` only the ``\\n`` is removed.

    Yields:
        Each line as a ``str``.

    Raises:
        ValueError: The file is empty, or a line has a NUL byte or invalid UTF-8
            (the message names the file and the 1-based line number).
    """
    with _open(path) as f:
        number = 0
        for number, raw in enumerate(f, start=1):
            raw = raw.removesuffix(b"\n")
            if clean:
                raw = raw.removesuffix(b"\r")
                if number == 1:
                    raw = raw.removeprefix(_BOM)
            yield _decode(raw, path, number)
    if number == 0:
        raise ValueError(f"{path} is empty")


def iter_pairs(source_path: str, target_path: str, *, clean: bool) -> Iterator[tuple[str, str]]:
    """Yields aligned ``(source_line, target_line)`` pairs of two parallel files.

    Args:
        source_path: Source-language file (plain or gzip).
        target_path: Target-language file (plain or gzip).
        clean: Passed to `iter_lines`.

    Yields:
        One pair per line, in file order; empty lines are kept.

    Raises:
        ValueError: The files differ in line count (the message names both files and counts),
            or `iter_lines` rejects one of them.
    """
    sources = iter_lines(source_path, clean=clean)
    targets = iter_lines(target_path, clean=clean)
    count = 0
    for source, target in itertools.zip_longest(sources, targets, fillvalue=_MISSING):
        if source is _MISSING or target is _MISSING:
            source_count = count + (source is not _MISSING) + sum(1 for _ in sources)
            target_count = count + (target is not _MISSING) + sum(1 for _ in targets)
            raise ValueError(
                f"line count mismatch: {source_path} has {source_count} lines "
                f"but {target_path} has {target_count}"
            )
        count += 1
        yield source, target
