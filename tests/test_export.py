import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import tensorflow as tf

from seq2seq.data.sources import load_configured_splits as load_splits
from seq2seq.evaluation.scoring import split_texts

LOADER = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    import tensorflow_text  # registers the SentencePiece op
    model = tf.saved_model.load(sys.argv[1])
    sentences = json.loads(sys.stdin.read())
    serve = model.signatures["serving_default"]
    out = serve(text=tf.constant(sentences, tf.string))["translation"].numpy()
    nbest = model.signatures["translate_nbest"](text=tf.constant(sentences, tf.string))
    print(json.dumps({
        "translations": [x.decode("utf-8") for x in out],
        "nbest_shape": list(nbest["translations"].shape),
        "scores_dtype": nbest["scores"].dtype.name,
        "signatures": sorted(model.signatures),
        "inputs": sorted(serve.structured_input_signature[1]),
        "seq2seq_imported": any(m.split(".")[0] == "seq2seq" for m in sys.modules),
    }))
    """
)


def _load_in_fresh_process(export_dir, sentences, cwd):
    proc = subprocess.run(
        [sys.executable, "-c", LOADER, str(export_dir)],
        input=json.dumps(sentences),
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_moved_export_loads_without_the_package_and_matches_in_process(tiny_run, tmp_path):
    run_dir, _, cfg = tiny_run
    moved = tmp_path / "elsewhere" / "translator"
    shutil.copytree(run_dir / "export", moved)
    sources, _ = split_texts(load_splits(cfg.data)["test"])
    in_process = (run_dir / "test_hypotheses.txt").read_text(encoding="utf-8").split("\n")[:-1]

    result = _load_in_fresh_process(moved, sources, cwd=tmp_path)

    assert not result["seq2seq_imported"]
    assert {"serving_default", "translate_nbest", "translate_options"} <= set(result["signatures"])
    assert result["inputs"] == ["text"]
    assert result["translations"] == in_process
    assert result["nbest_shape"][0] == len(sources)
    assert result["scores_dtype"] == "float32"


def test_export_handles_empty_batch_and_odd_strings(tiny_run, tmp_path):
    """Blank, emoji, CJK, mixed scripts and a 10,000-word line (truncated, no crash)."""
    run_dir, _, _ = tiny_run
    odd = ["", "   ", "dreihundert", "🙂 漢字 mixed Ω", "dreihundert " * 10_000]
    result = _load_in_fresh_process(run_dir / "export", odd, cwd=tmp_path)
    out = result["translations"]
    assert len(out) == len(odd) and out[0] == "" and out[1] == ""
    alone = [
        _load_in_fresh_process(run_dir / "export", [s], cwd=tmp_path)["translations"][0]
        for s in odd[2:4]
    ]
    assert alone == out[2:4]
    assert _load_in_fresh_process(run_dir / "export", [], cwd=tmp_path)["translations"] == []


def test_the_export_stores_every_weight_once(tiny_run):
    run_dir, metrics, _ = tiny_run
    reader = tf.train.load_checkpoint(str(run_dir / "export" / "variables" / "variables"))
    shapes = reader.get_variable_to_shape_map()
    stored = sum(
        int(np.prod(shapes[name]))
        for name, dtype in reader.get_variable_to_dtype_map().items()
        if dtype.is_floating
    )
    assert stored == metrics["parameters"]
