"""The one rule for text files (seq2seq.lines): LF, CRLF and CR end lines; nothing else does."""

import gzip

import pytest

from seq2seq import lines

# Every character Python's str.splitlines breaks at, but for \n and \r.
NOT_LINE_ENDS = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
TEXT = ["erste Zeile", "", "dritte  Zeile", "vierte"]


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
@pytest.mark.parametrize("final", [True, False], ids=["final end", "no final end"])
def test_lf_crlf_and_cr_files_read_as_their_lines(tmp_path, end, final):
    path = tmp_path / "text.txt"
    path.write_bytes((end.join(TEXT) + (end if final else "")).encode("utf-8"))
    assert lines.read_lines(path) == TEXT


@pytest.mark.parametrize("separator", NOT_LINE_ENDS, ids=[hex(ord(c)) for c in NOT_LINE_ENDS])
def test_other_separators_stay_inside_their_line(tmp_path, separator):
    content = [f"vor{separator}nach", "zweite"]
    path = tmp_path / "text.txt"
    path.write_bytes("\n".join(content).encode("utf-8") + b"\n")
    assert lines.read_lines(path) == content
    assert len(f"vor{separator}nach".splitlines()) == 2  # what the rule avoids


def test_gzip_bom_and_mixed_line_ends(tmp_path):
    path = tmp_path / "text.txt.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"\xef\xbb\xbfa\r\nb\rc\nd")
    assert lines.read_lines(path) == ["a", "b", "c", "d"]


def test_a_broken_gzip_file_is_named(tmp_path):
    path = tmp_path / "train.de.gz"
    whole = gzip.compress("".join(f"Zeile {i}\n" for i in range(10_000)).encode())
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(lines.TextFileError, match=r"train\.de\.gz: broken gzip file"):
        lines.read_lines(path)


def test_invalid_utf8_and_nul_bytes_name_the_file_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"gut\n\xff\xfe\n")
    with pytest.raises(lines.TextFileError, match=r"bad\.txt, line 2: invalid UTF-8 at byte 0"):
        lines.read_lines(path)
    path.write_bytes(b"gut\nnul\x00\n")
    with pytest.raises(lines.TextFileError, match=r"bad\.txt, line 2: contains a NUL byte"):
        lines.read_lines(path)


def test_what_is_written_reads_back_as_the_same_lines(tmp_path):
    written = ["a\nb", "c\r\nd", "e\rf", f"g{NOT_LINE_ENDS[6]}h", ""]
    path = tmp_path / "out.txt"
    lines.write_lines(path, written)
    back = lines.read_lines(path)
    assert back == ["a b", "c d", "e f", written[3], ""]
    assert len(back) == len(written)
