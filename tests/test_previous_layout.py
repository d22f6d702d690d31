"""A run folder written before the package was reorganized still evaluates, translates and
ensembles, and its checkpoint loads into today's model with the same translations.

`fixtures/run_v0` is a tiny numbers run (units 64, beam 2 baked into the export) trained and
exported by the flat-layout package; its `test_hypotheses.txt` are that version's translations
of `sources.txt` (its test split; `references.txt` beside it). The numbers task has since drawn
its numbers differently (`seq2seq.data.numbers` 2.0.0), so `--split test` scores the old run on
today's test split.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf

from seq2seq import ensemble, evaluate
from seq2seq.config import load_run_config
from seq2seq.inference.exported import load_export
from seq2seq.inference.trained import load_final_model, load_tokenizers
from seq2seq.inference.translator import TEXT_SIGNATURE, make_translator
from seq2seq.lines import read_lines

FIXTURE = Path(__file__).parent / "fixtures" / "run_v0"


@pytest.fixture()
def old_run(tmp_path):
    run = tmp_path / "run_v0"
    shutil.copytree(FIXTURE, run)
    return run


def _old_hypotheses():
    return read_lines(FIXTURE / "test_hypotheses.txt")


def test_evaluate_scores_the_old_run_as_it_scored_itself(old_run, tmp_path):
    out, hypotheses = tmp_path / "scores.json", tmp_path / "hyp.txt"
    files = [
        "--source",
        str(FIXTURE / "sources.txt"),
        "--reference",
        str(FIXTURE / "references.txt"),
    ]
    outputs = ["--output-json", str(out), "--hypotheses", str(hypotheses)]
    assert evaluate.main(["--model", str(old_run), *files, "--quiet", *outputs]) == 0
    assert read_lines(hypotheses) == _old_hypotheses()
    saved = json.loads((FIXTURE / "metrics.json").read_text())["test"]
    assert json.loads(out.read_text())["bleu"] == pytest.approx(saved["bleu"])


def test_evaluate_reads_the_old_run_config_for_a_split(old_run, tfds_dir):
    split = ["--split", "test", "--data-dir", str(tfds_dir)]
    assert evaluate.main(["--model", str(old_run), *split, "--quiet"]) == 0
    scores = json.loads((old_run / "evaluation_test.json").read_text())
    assert scores["data"]["split"] == "test" and 0 <= scores["bleu"] <= 100
    assert scores["exact_match_by_group"]


def test_translate_reads_the_old_export(old_run):
    sentence = "dreihundertfünfundvierzig"
    proc = subprocess.run(
        [sys.executable, "-m", "seq2seq.translate", "--model", str(old_run), "--quiet"],
        input=sentence + "\n",
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    exported = load_export(FIXTURE / "export").signatures["serving_default"]
    expected = exported(text=tf.constant([sentence]))["translation"].numpy()[0].decode()
    assert proc.stdout == expected + "\n"


def test_the_old_checkpoint_translates_as_the_old_export_with_todays_code(old_run):
    config = load_run_config(old_run)
    tokenizers = load_tokenizers(old_run)
    model, path = load_final_model(old_run, tokenizers)
    assert path.name == "last.weights.h5"
    translator = make_translator(model, tokenizers, config.decode)
    translate = tf.function(translator.translate, input_signature=TEXT_SIGNATURE)
    sources = read_lines(FIXTURE / "sources.txt")
    got = [t.decode() for t in translate(tf.constant(sources))["translation"].numpy()]
    assert got == _old_hypotheses()


def test_the_old_run_ensembles_with_itself(old_run, tmp_path):
    out = tmp_path / "ensemble"
    assert ensemble.main([str(old_run), str(old_run), "--output", str(out)]) == 0
    sources = read_lines(FIXTURE / "sources.txt")
    translations = load_export(out / "export").signatures["serving_default"](
        text=tf.constant(sources)
    )["translation"]
    assert [t.decode() for t in translations.numpy()] == _old_hypotheses()
