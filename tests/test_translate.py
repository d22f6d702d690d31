import gzip
import io
import json
import subprocess
import sys
import textwrap
import threading

import pytest
import tensorflow as tf

from seq2seq import translate
from seq2seq.inference.batching import Progress, translate_sorted
from seq2seq.inference.exported import load_export
from seq2seq.lines import read_lines

# Blank lines, a CRLF line end, different lengths: more than one batch at --batch-size 2.
SENTENCES = ["dreihundert", "", "zwei", "siebenhundertelf", "   ", "neunzehn", "vierhundertzwei"]
INPUT = "\n".join(SENTENCES).replace("zwei\n", "zwei\r\n") + "\n"

# TensorFlow 2.21's own `import tensorflow` already loads part of Keras (keras._tf_keras), so
# the check is: translate adds no Keras module to those, and no other seq2seq module.
IMPORTS = textwrap.dedent(
    """
    import json, sys
    import tensorflow
    def loaded(prefix):
        return {m for m in sys.modules if m == prefix or m.startswith(prefix + ".")}
    keras_by_tensorflow = loaded("keras")
    from seq2seq import translate
    code = translate.main(sys.argv[1:])
    extra = (loaded("keras") - keras_by_tensorflow) | loaded("seq2seq") | loaded("hydra")
    print(json.dumps({"code": code, "imported": sorted(extra)}))
    """
)


@pytest.fixture(scope="module")
def export(tiny_run):
    """The tiny run's loaded SavedModel."""
    return load_export(tiny_run[0] / "export")


@pytest.fixture(scope="module")
def served(export):
    """The export's own serving_default translations of SENTENCES, all in one batch."""
    out = export.signatures["serving_default"](text=tf.constant(SENTENCES))["translation"]
    return [text.decode("utf-8") for text in out.numpy()]


def _translate(*args):
    return subprocess.run(
        [sys.executable, "-m", "seq2seq.translate", *args],
        input=INPUT.encode("utf-8"),
        capture_output=True,
        timeout=300,
        check=False,
    )


def test_stdin_to_stdout_in_input_order_equals_serving_default(tiny_run, served):
    proc = _translate("--model", str(tiny_run[0]), "--batch-size", "2", "--intra-op-threads", "1")
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    lines = proc.stdout.decode("utf-8").split("\n")
    assert lines[-1] == ""  # every line, the last one too, ends with a newline
    assert lines[:-1] == served
    assert served[1] == "" and served[4] == ""  # blank inputs give empty lines


def test_translate_imports_neither_keras_nor_training_code(tiny_run, tmp_path):
    source, target = tmp_path / "in.txt", tmp_path / "out.txt"
    source.write_text(INPUT, encoding="utf-8")
    args = ["--model", str(tiny_run[0] / "export"), "--input", str(source), "--output", str(target)]
    proc = subprocess.run(
        [sys.executable, "-c", IMPORTS, *args], capture_output=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    result = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    assert result == {
        "code": 0,
        "imported": [
            "seq2seq",
            "seq2seq.cli",
            "seq2seq.conf",
            "seq2seq.config",
            "seq2seq.files",
            "seq2seq.inference",
            "seq2seq.inference.batching",
            "seq2seq.inference.exported",
            "seq2seq.inference.settings",
            "seq2seq.inference.threads",
            "seq2seq.lines",
            "seq2seq.run_folder",
            "seq2seq.translate",
        ],
    }
    assert len(read_lines(target)) == len(SENTENCES)


def test_file_in_file_out(tiny_run, served, tmp_path):
    source, target = tmp_path / "in.txt", tmp_path / "out.txt"
    source.write_bytes(b"\xef\xbb\xbf" + INPUT.rstrip("\n").encode("utf-8"))  # BOM, no final \n
    args = ["--model", str(tiny_run[0]), "--input", str(source), "--output", str(target)]
    assert translate.main([*args, "--batch-size", "3", "--quiet"]) == 0
    assert target.read_text(encoding="utf-8") == "".join(line + "\n" for line in served)


def test_scores_print_the_baked_nbest_list(tiny_run, served, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text(INPUT, encoding="utf-8")
    assert translate.main(["--model", str(tiny_run[0]), "--input", str(source), "--scores"]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [text for text, _ in rows] == served  # the tiny run bakes in greedy search, 1-best
    assert rows[1] == ["", "0.0000"] and all(float(score) <= 0 for _, score in rows)


def test_nbest_with_beam_search(tiny_run, export, tmp_path, capsys):
    if "translate_options" not in export.signatures:
        pytest.skip("this export has no translate_options signature yet")
    source = tmp_path / "in.txt"
    source.write_text(INPUT, encoding="utf-8")
    args = ["--model", str(tiny_run[0]), "--input", str(source), "--n-best", "2"]
    assert translate.main([*args, "--beam-size", "3", "--batch-size", "2"]) == 0
    lines = capsys.readouterr().out.split("\n")
    assert lines[-1] == "" and len(lines) - 1 == 2 * len(SENTENCES)
    rows = [line.split("\t") for line in lines[:-1]]
    assert all(len(row) == 2 for row in rows)
    scores = [float(score) for _, score in rows]
    assert rows[2] == rows[3] == ["", "0.0000"]  # the empty second input
    for i in range(0, len(scores), 2):
        assert scores[i] >= scores[i + 1]  # best first


@pytest.mark.parametrize(
    "make_args, message",
    [
        (lambda d: ["--model", str(d / "nowhere")], "nowhere: no such file or directory"),
        (lambda d: ["--model", str(d)], "not an export folder"),
        (lambda d: ["--input", str(d / "missing.txt")], "missing.txt: no such file"),
        (lambda d: ["--input", str(d / "bad.txt")], "bad.txt, line 3: invalid UTF-8"),
        (lambda d: ["--n-best", "3", "--beam-size", "2"], "--n-best=3: must be at most"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(tiny_run, tmp_path, capsys, make_args, message):
    (tmp_path / "bad.txt").write_bytes(b"eins\nzwei\ndrei \xff\xfe\n")
    args = make_args(tmp_path)
    if "--model" not in args:
        args = ["--model", str(tiny_run[0]), *args]
    assert translate.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("seq2seq.translate: error: ") and message in err[0]


def test_read_lines_splits_on_newline_only(tmp_path):
    path = tmp_path / "x.txt"
    path.write_bytes("\ufeffa\u2028b\r\n\nc\x0cd".encode())
    assert read_lines(path) == ["a\u2028b", "", "c\x0cd"]
    path.write_bytes(b"")
    assert read_lines(path) == []
    path.write_bytes(gzip.compress(b"x\ny\n"))
    assert read_lines(path) == ["x", "y"]


def test_translate_sorted_batches_by_length_and_restores_order():
    batches = []

    def fake(batch):
        batches.append(batch)
        return [s.upper() for s in batch]

    sentences = ["ccc", "a", "", "bb", "dddd"]
    assert translate_sorted(fake, sentences, 2) == [s.upper() for s in sentences]
    assert batches == [["", "a"], ["bb", "ccc"], ["dddd"]]


def test_translate_sorted_keeps_batches_in_flight_together_and_in_order():
    calls, done = [], []
    together = threading.Barrier(2, timeout=20)  # broken unless batches 2 and 3 overlap

    def fake(batch):
        calls.append(threading.current_thread())
        if len(calls) in (2, 3):
            together.wait()
        return [s.upper() for s in batch]

    sentences = ["ccc", "a", "", "bb", "dddd", "eeeee"]
    result = translate_sorted(fake, sentences, 2, on_batch=done.append, parallel=2)
    assert result == [s.upper() for s in sentences]
    assert done == [2, 4, 6]
    assert calls[0] is threading.main_thread()  # the first batch traces on the caller's thread


def test_translate_sorted_raises_a_batch_error_from_its_thread():
    def fails_on_bb(batch):
        if "bb" in batch:
            raise ValueError("bad batch")
        return batch

    with pytest.raises(ValueError, match="bad batch"):
        translate_sorted(fails_on_bb, ["a", "bb", "ccc", "dddd", "eeeee"], 1, parallel=2)


def test_progress_every_n_batches_and_at_the_end():
    stream = io.StringIO()
    progress = Progress(total=25, every=2, stream=stream)
    for done in (10, 20, 25):
        progress(done)
    lines = stream.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == [
        "translated 20/25 sentences",
        "translated 25/25 sentences",
    ]
    assert lines[0].endswith("sentences/s")
