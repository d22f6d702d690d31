import json
import shutil

import pytest

from seq2seq import evaluate
from seq2seq.data.sources import load_configured_splits as load_splits
from seq2seq.evaluation.scoring import split_texts
from seq2seq.inference.exported import load_export
from seq2seq.lines import read_lines

SCORE_ROWS = ("BLEU", "chrF", "TER", "BLEU tok lc", "exact match %", "sentences/s")


@pytest.fixture(scope="module")
def test_files(tiny_run, tmp_path_factory):
    """The run's test split written as a source and a reference file."""
    _, _, cfg = tiny_run
    sources, references = split_texts(load_splits(cfg.data)["test"])
    folder = tmp_path_factory.mktemp("test_files")
    for name, lines in (("test.de", sources), ("test.en", references)):
        (folder / name).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return folder / "test.de", folder / "test.en"


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    """The run folder's config and export, copied (the default JSON is written there)."""
    run_dir = tiny_run[0]
    shutil.copy(run_dir / "config.yaml", tmp_path / "config.yaml")
    shutil.copytree(run_dir / "export", tmp_path / "export")
    return tmp_path


def test_test_split_gives_the_training_run_scores(tiny_run, tmp_path, capsys):
    run_dir, metrics, _ = tiny_run
    out, hyps = tmp_path / "eval.json", tmp_path / "hyps.txt"
    args = ["--model", str(run_dir), "--split", "test", "--batch-size", "16", "--quiet"]
    assert evaluate.main([*args, "--output-json", str(out), "--hypotheses", str(hyps)]) == 0

    report = json.loads(out.read_text())
    assert report["bleu"] == pytest.approx(metrics["test"]["bleu"], abs=1e-6)
    assert report["chrf"] == pytest.approx(metrics["test"]["chrf"], abs=1e-6)
    assert report["bleu_signature"] == metrics["test"]["bleu_signature"]
    assert report["exact_match"] == pytest.approx(metrics["test"]["exact_match"])
    assert (
        report["sentences"] == metrics["test"]["sentences"] and report["sentences_per_second"] > 0
    )
    assert report["ter_signature"].startswith("nrefs:1|") and 0 <= report["ter"]
    assert report["bleu_tok_lc_signature"].startswith("moses-tok:en|nrefs:1|case:lc|")
    assert report["ter"] == pytest.approx(metrics["test"]["ter"])
    assert report["exact_match_by_group"] == metrics["test"]["exact_match_by_group"]
    assert report["data"]["split"] == "test" and report["decoding"] == {
        "signature": "serving_default"
    }
    assert read_lines(hyps) == read_lines(run_dir / "test_hypotheses.txt")

    table = capsys.readouterr().out.splitlines()
    rows = {line.split("  ")[0].strip(): line for line in table}
    assert set(SCORE_ROWS) <= set(rows)
    assert f"{metrics['test']['bleu']:.2f}" in rows["BLEU"]
    assert metrics["test"]["bleu_signature"] in rows["BLEU"]
    assert rows["JSON"].endswith(str(out))


def test_files_on_an_export_folder_write_the_json_beside_it(tiny_run, run_copy, test_files):
    _, metrics, _ = tiny_run
    source, reference = test_files
    args = ["--model", str(run_copy / "export"), "--source", str(source)]
    assert evaluate.main([*args, "--reference", str(reference), "--quiet"]) == 0

    report = json.loads((run_copy / "evaluation_files_test.de.json").read_text())
    assert report["bleu"] == pytest.approx(metrics["test"]["bleu"], abs=1e-6)
    assert report["data"] == {
        "source": str(source.resolve()),
        "reference": str(reference.resolve()),
    }


def test_translate_options_with_beam_size_1_is_the_greedy_search(tiny_run, test_files, tmp_path):
    run_dir, metrics, _ = tiny_run
    if "translate_options" not in load_export(run_dir / "export").signatures:
        pytest.skip("this export has no translate_options signature yet")
    source, reference = test_files
    out = tmp_path / "eval.json"
    args = ["--model", str(run_dir), "--source", str(source), "--reference", str(reference)]
    assert evaluate.main([*args, "--beam-size", "1", "--output-json", str(out), "--quiet"]) == 0
    report = json.loads(out.read_text())
    assert report["decoding"] == {
        "signature": "translate_options",
        "beam_size": 1,
        "alpha": 0.6,
        "n_best": 1,
    }
    assert report["bleu"] == pytest.approx(metrics["test"]["bleu"], abs=1e-6)


def test_misaligned_files_and_split_without_config_are_errors(
    run_copy, test_files, tmp_path, capsys
):
    source, _ = test_files
    short = tmp_path / "short.en"
    short.write_text("one\n", encoding="utf-8")
    args = ["--model", str(run_copy), "--source", str(source), "--reference", str(short)]
    assert evaluate.main(args) == 2
    assert f"{short} has 1" in capsys.readouterr().err
    (run_copy / "config.yaml").unlink()
    assert evaluate.main(["--model", str(run_copy), "--split", "test"]) == 2
    assert "--split needs the run folder's config.yaml" in capsys.readouterr().err
