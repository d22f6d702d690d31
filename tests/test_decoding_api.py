"""The decoding API of the export (score, attention, align, sampling, constraints), run on the
tiny run's export moved elsewhere and loaded in a fresh process, without this package."""

import json
import math
import shutil
import subprocess
import sys
import textwrap

import pytest

SENTENCES = ["dreihundert", "siebenhundertelf", "zwei", "neunhundertneunundneunzig", "vierzehn"]

# Runs every signature once in a fresh process; prints one JSON object of plain lists.
PROBE = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    import tensorflow_text  # registers the SentencePiece op
    model = tf.saved_model.load(sys.argv[1])
    sentences = json.loads(sys.stdin.read())
    sig = model.signatures
    text = tf.constant(sentences)

    def plain(out):
        return {k: v.numpy().tolist() for k, v in out.items()}

    def strings(values):
        return [v.decode("utf-8") for v in values.numpy().ravel()]

    beam = sig["translate_options"](
        text=text, beam_size=tf.constant(4), alpha=tf.constant(0.6), n_best=tf.constant(3)
    )
    hypotheses = strings(beam["translations"])
    repeated = tf.constant([s for s in sentences for _ in range(3)])
    best = sig["serving_default"](text=text)["translation"]
    wrong = tf.roll(best, 1, axis=0)  # each sentence with another one's translation
    result = {
        "signatures": sorted(sig),
        "seq2seq_imported": any(m.split(".")[0] == "seq2seq" for m in sys.modules),
        "best": strings(best),
        "beam_hypotheses": hypotheses,
        "beam_scores": beam["scores"].numpy().ravel().tolist(),
        "rescored": plain(sig["score"](text=repeated, translation=tf.constant(hypotheses))),
        "right": plain(sig["score"](text=text, translation=best)),
        "wrong": plain(sig["score"](text=text, translation=wrong)),
        "attention": plain(sig["attention"](text=text, translation=best)),
        "empty_attention": plain(sig["attention"](text=tf.zeros([0], tf.string),
                                                  translation=tf.zeros([0], tf.string))),
    }
    for key in ("source_pieces", "target_pieces"):
        result["attention"][key] = [[p.decode("utf-8") for p in row]
                                    for row in sig["attention"](text=text, translation=best)[key].numpy()]
    print(json.dumps(result))
    """
)


@pytest.fixture(scope="module")
def probed(tiny_run, tmp_path_factory):
    """The PROBE's results on the tiny run's export, moved to another folder."""
    moved = tmp_path_factory.mktemp("moved") / "translator"
    shutil.copytree(tiny_run[0] / "export", moved)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(moved)],
        input=json.dumps(SENTENCES),
        capture_output=True,
        text=True,
        cwd=moved.parent,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_new_signatures_load_without_the_package(probed):
    assert not probed["seq2seq_imported"]
    assert {"score", "attention"} <= set(probed["signatures"])


def test_score_of_each_beam_hypothesis_equals_its_beam_score(probed):
    scores = probed["rescored"]["score"]
    assert len(scores) == len(probed["beam_scores"]) == 3 * len(SENTENCES)
    for rescored, beam in zip(scores, probed["beam_scores"]):
        assert math.isfinite(beam)
        assert rescored == pytest.approx(beam, rel=1e-4)


def test_score_parts_add_up(probed):
    out = probed["rescored"]
    for score, logp, tokens, length in zip(
        out["score"], out["log_probability"], out["token_log_probs"], out["lengths"]
    ):
        assert sum(tokens[:length]) == pytest.approx(logp, rel=1e-5)
        assert all(t == 0.0 for t in tokens[length:]) and all(t <= 0 for t in tokens)
        assert score == pytest.approx(logp / ((5 + length) / 6) ** 0.6, rel=1e-5)


def test_the_right_translation_outscores_the_wrong_ones(probed):
    right, wrong = probed["right"]["score"], probed["wrong"]["score"]
    assert all(r > w for r, w in zip(right, wrong))


def test_attention_shapes_pieces_and_weights(probed):
    att = probed["attention"]
    weights, src, tgt = att["attention"], att["source_pieces"], att["target_pieces"]
    assert len(weights) == len(src) == len(tgt) == len(SENTENCES)
    for i, sentence in enumerate(SENTENCES):
        s_len, t_len = att["source_lengths"][i], att["target_lengths"][i]
        assert "".join(src[i][:s_len]).replace("\u2581", " ").strip() == sentence
        assert all(p == "" for p in src[i][s_len:]) and all(p == "" for p in tgt[i][t_len:])
        assert tgt[i][t_len - 1] == "</s>"
        assert "".join(tgt[i][: t_len - 1]).replace("\u2581", " ").strip() == probed["best"][i]
        for t, row in enumerate(weights[i]):
            assert len(row) == len(src[i])
            expected = 1.0 if t < t_len else 0.0
            assert sum(row[:s_len]) == pytest.approx(expected, abs=1e-4)
            assert all(w == 0.0 for w in row[s_len:])


def test_attention_of_an_empty_batch(probed):
    assert probed["empty_attention"]["attention"] == []
