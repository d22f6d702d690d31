"""Ensembles of trained runs: the averaged distribution, the export, the CLI's checks."""

import json
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq2seq import ensemble, evaluate
from seq2seq.data.sources import load_configured_splits as load_splits
from seq2seq.evaluation.metrics import corpus_scores
from seq2seq.evaluation.scoring import split_texts
from seq2seq.inference.exported import load_export
from seq2seq.model.ensemble import Ensemble
from seq2seq.training import model_setup


def _small_translator(seed):
    keras.utils.set_random_seed(seed)
    return model_setup.build_translator(
        11,
        13,
        optimizer="adam",
        label_smoothing=0.0,
        param_init=0.5,
        embedding_dim=8,
        units=16,
        encoder_layers=1,
        decoder_layers=1,
        bidirectional=True,
        attention="general",
        dropout=0.0,
        bridge="copy",
        residual=False,
        input_feeding=False,
        tie_embeddings=False,
    )


def test_decode_step_gives_the_log_of_the_members_mean_probabilities():
    members = [_small_translator(1), _small_translator(2)]
    source = tf.constant([[4, 5, 6, 0], [7, 8, 0, 0]], tf.int32)
    tokens = tf.constant([2, 9], tf.int32)
    model = Ensemble(members)
    state, memory = model.encode(source)
    log_probs, _ = model.decode_step(tokens, state, memory)
    alone = []
    for member in members:
        member_state, member_memory = member.encode(source)
        logits, _ = member.decode_step(tokens, member_state, member_memory)
        alone.append(tf.nn.softmax(tf.cast(logits, tf.float32)).numpy())
    assert not np.allclose(alone[0], alone[1], atol=1e-3)  # two different members
    np.testing.assert_allclose(np.exp(log_probs.numpy()), (alone[0] + alone[1]) / 2, atol=1e-6)
    assert model.get_config()["members"][1]["units"] == 16


def test_a_run_ensembled_with_itself_translates_and_scores_as_the_run(tiny_run, tmp_path):
    """Averaging a distribution with itself changes nothing: the ensemble's n-best lists and
    scores are the run's, through its export, `seq2seq.evaluate` and `seq2seq.translate`."""
    run_dir, _, cfg = tiny_run
    out = tmp_path / "ens"
    code = ensemble.main(
        [str(run_dir), str(run_dir), "decode.beam_size=3", "decode.n_best=2", "--output", str(out)]
    )
    assert code == 0
    assert (out / "export" / "saved_model.pb").exists() and (out / "tokenizers").is_dir()
    sources, _ = split_texts(load_splits(cfg.data)["test"])
    text = tf.constant(sources)
    pair = load_export(out / "export").signatures["translate_nbest"](text=text)
    options = dict(
        beam_size=tf.constant(3), alpha=tf.constant(float(cfg.decode.alpha)), n_best=tf.constant(2)
    )
    single = load_export(run_dir / "export").signatures["translate_options"](text=text, **options)
    np.testing.assert_array_equal(pair["translations"].numpy(), single["translations"].numpy())
    np.testing.assert_allclose(pair["scores"].numpy(), single["scores"].numpy(), rtol=1e-4)

    assert evaluate.main(["--model", str(out), "--split", "test", "--quiet"]) == 0
    scores = json.loads((out / "evaluation_test.json").read_text())
    best = [x.decode("utf-8") for x in single["translations"].numpy()[:, 0]]
    _, references = split_texts(load_splits(cfg.data)["test"])
    assert scores["bleu"] == pytest.approx(corpus_scores(best, references)["bleu"])
    translated = subprocess.run(
        [sys.executable, "-m", "seq2seq.translate", "--model", str(out), "--quiet"],
        input=sources[0] + "\n",
        capture_output=True,
        text=True,
        check=True,
    )
    assert translated.stdout == best[0] + "\n"


def test_runs_with_other_tokenizers_are_refused_by_name(tiny_run, tmp_path, capsys):
    run_dir, _, _ = tiny_run
    other = tmp_path / "other"
    shutil.copytree(run_dir / "tokenizers", other / "tokenizers")
    shutil.copy(run_dir / "config.yaml", other / "config.yaml")
    vocab = other / "tokenizers" / "target.vocab"
    vocab.write_text("\n".join(vocab.read_text(encoding="utf-8").splitlines()[:-1]) + "\n")
    code = ensemble.main([str(run_dir), str(other), "--output", str(tmp_path / "ens")])
    assert code == 2
    assert f"{vocab} differs" in capsys.readouterr().err
    assert not (tmp_path / "ens").exists()


def test_an_unfinished_run_is_named(tiny_run, tmp_path, capsys):
    run_dir, _, _ = tiny_run
    empty = tmp_path / "empty"
    shutil.copytree(run_dir / "tokenizers", empty / "tokenizers")
    shutil.copy(run_dir / "config.yaml", empty / "config.yaml")
    code = ensemble.main([str(run_dir), str(empty), "--output", str(tmp_path / "ens")])
    assert code == 2
    assert f"{empty / 'checkpoints'}: no last.weights.h5" in capsys.readouterr().err
    assert not (tmp_path / "ens").exists()
