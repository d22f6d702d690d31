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
    constrained = sig["translate_constrained"]

    def sample(texts, temperature, seed, top_k=0, top_p=1.0):
        out = sig["translate_sample"](text=tf.constant(texts), temperature=tf.constant(temperature),
                                      top_k=tf.constant(top_k), top_p=tf.constant(top_p),
                                      seed=tf.constant(seed))
        return strings(out["translations"])

    def constrain(beam_size, min_length=0, no_repeat=0, prefix=None):
        out = constrained(text=text, beam_size=tf.constant(beam_size), alpha=tf.constant(0.6),
                          n_best=tf.constant(1), min_length=tf.constant(min_length),
                          no_repeat_ngram_size=tf.constant(no_repeat),
                          prefix=tf.constant(prefix or [""] * len(sentences)))
        return strings(out["translations"])

    def pieces(out):
        return [[p.decode("utf-8") for p in row] for row in out.numpy()]

    attention = sig["attention"](text=text, translation=best)
    prefixes = ["one", "five hundred", "", "nine hundred and", "twelve"]
    result = {
        "signatures": sorted(sig),
        "seq2seq_imported": any(m.split(".")[0] == "seq2seq" for m in sys.modules),
        "best": strings(best),
        "beam_hypotheses": hypotheses,
        "beam_scores": beam["scores"].numpy().ravel().tolist(),
        "rescored": plain(sig["score"](text=repeated, translation=tf.constant(hypotheses))),
        "right": plain(sig["score"](text=text, translation=best)),
        "wrong": plain(sig["score"](text=text, translation=wrong)),
        "attention": {**plain(attention), "source_pieces": pieces(attention["source_pieces"]),
                      "target_pieces": pieces(attention["target_pieces"])},
        "empty_attention": plain(sig["attention"](text=tf.zeros([0], tf.string),
                                                  translation=tf.zeros([0], tf.string))),
        "alignments": strings(sig["align"](text=text, translation=best)["alignment"]),
        "wrong_alignments": strings(sig["align"](text=text, translation=wrong)["alignment"]),
        "greedy_samples": [sample(sentences, t, 3) for t in (0.0, 1e-4)],
        "samples": sample(sentences, 1.0, 5),
        "samples_reversed": sample(sentences[::-1], 1.0, 5)[::-1],
        "samples_alone": [sample([s], 1.0, 5)[0] for s in sentences],
        "samples_other_seed": sample(sentences, 1.0, 6),
        "options_beam": strings(sig["translate_options"](text=text, beam_size=tf.constant(4),
                                alpha=tf.constant(0.6), n_best=tf.constant(1))["translations"]),
        "constrained_defaults": [constrain(1), constrain(4)],
        "prefixes": prefixes,
        "prefixed": [constrain(1, prefix=prefixes), constrain(4, prefix=prefixes)],
        "long": [plain(sig["score"](text=text, translation=tf.constant(out)))["lengths"]
                 for out in (constrain(1, min_length=12), constrain(4, min_length=12))],
    }
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


def _pairs(alignment):
    return [tuple(int(x) for x in pair.split("-")) for pair in alignment.split()]


def test_alignments_index_valid_words(probed):
    for sentence, translation, alignment in zip(SENTENCES, probed["best"], probed["alignments"]):
        pairs = _pairs(alignment)
        assert [j for _, j in pairs] == list(range(len(translation.split())))
        assert all(0 <= i < len(sentence.split()) for i, _ in pairs)
    wrong = probed["best"][-1:] + probed["best"][:-1]  # each sentence with another's translation
    for sentence, translation, alignment in zip(SENTENCES, wrong, probed["wrong_alignments"]):
        pairs = _pairs(alignment)
        assert [j for _, j in pairs] == list(range(len(translation.split())))
        assert all(0 <= i < len(sentence.split()) for i, _ in pairs)


def test_sampling_is_seeded_and_batch_invariant(probed):
    assert probed["samples"] == probed["samples_reversed"] == probed["samples_alone"]
    assert probed["samples"] != probed["samples_other_seed"]  # 5 sentences: differing is sure


def test_temperature_towards_zero_gives_the_greedy_translation(probed):
    assert probed["greedy_samples"] == [probed["best"], probed["best"]]


def test_constrained_with_everything_off_translates_as_before(probed):
    assert probed["constrained_defaults"] == [probed["best"], probed["options_beam"]]


def test_the_prefix_is_kept(probed):
    for outputs in probed["prefixed"]:
        for prefix, output in zip(probed["prefixes"], outputs):
            assert output.startswith(prefix)
    assert probed["prefixed"][0] != probed["best"]


def test_min_length_makes_every_translation_long_enough(probed):
    for lengths in probed["long"]:
        assert all(n >= 12 for n in lengths)  # re-tokenized pieces and EOS


# === The command-line tools and the Python API (in this process) ===


@pytest.fixture(scope="module")
def files(tiny_run, tmp_path_factory, probed):
    folder = tmp_path_factory.mktemp("files")
    (folder / "src.txt").write_text("".join(s + "\n" for s in SENTENCES), encoding="utf-8")
    (folder / "tgt.txt").write_text("".join(t + "\n" for t in probed["best"]), encoding="utf-8")
    (folder / "short.txt").write_text("eins\n", encoding="utf-8")
    return folder


def test_score_cli_prints_the_scores_of_the_signature(tiny_run, files, probed, capsys):
    from seq2seq import score

    args = ["--model", str(tiny_run[0]), "--source", str(files / "src.txt")]
    assert score.main([*args, "--target", str(files / "tgt.txt"), "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [float(x) for x in lines] == pytest.approx(probed["right"]["score"], abs=1e-4)
    assert score.main([*args, "--target", str(files / "tgt.txt"), "--per-token"]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    for (_, tokens), length in zip(rows, probed["right"]["lengths"]):
        assert len(tokens.split()) == length


def test_score_cli_names_the_files_that_differ_in_length(tiny_run, files, capsys):
    from seq2seq import score

    args = ["--model", str(tiny_run[0]), "--source", str(files / "src.txt")]
    assert score.main([*args, "--target", str(files / "short.txt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "line count mismatch" in err[0] and "short.txt" in err[0]


def test_translate_cli_samples_aligns_and_prefixes(tiny_run, files, probed, capsys):
    from seq2seq import translate

    args = ["--model", str(tiny_run[0]), "--input", str(files / "src.txt"), "--quiet"]
    assert translate.main([*args, "--sample", "--seed", "5"]) == 0
    assert capsys.readouterr().out.splitlines() == probed["samples"]
    assert translate.main([*args, "--alignments"]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert rows == [list(pair) for pair in zip(probed["best"], probed["alignments"])]
    assert translate.main([*args, "--prefix", "five hundred", "--beam-size", "4"]) == 0
    assert all(line.startswith("five hundred") for line in capsys.readouterr().out.splitlines())


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--sample", "--beam-size", "3"], "--sample draws one translation"),
        (["--sample", "--top-p", "0"], "--top-p=0.0: must be in (0, 1]"),
        (["--sample", "--temperature", "-1"], "--temperature=-1.0: must be at least 0"),
        (["--min-length", "-2"], "--min-length=-2: must be at least 0"),
        (["--top-k", "5"], "--top-k needs --sample"),
    ],
)
def test_translate_cli_rejects_bad_decoding_options(tiny_run, files, capsys, extra, message):
    from seq2seq import translate

    args = ["--model", str(tiny_run[0]), "--input", str(files / "src.txt")]
    assert translate.main([*args, *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_the_python_api(tiny_run, probed):
    from seq2seq.inference.exported import ExportedModel

    model = ExportedModel(tiny_run[0], batch_size=2)
    assert model.translate(SENTENCES) == probed["best"]
    nbest = model.translate_nbest(SENTENCES, beam_size=4, n_best=3)
    assert [h.score for hs in nbest for h in hs] == pytest.approx(probed["beam_scores"], rel=1e-5)
    assert model.sample(SENTENCES, seed=5) == probed["samples"]
    scores = model.score(SENTENCES, probed["best"])
    assert [s.score for s in scores] == pytest.approx(probed["right"]["score"], rel=1e-5)
    assert model.align(SENTENCES, probed["best"]) == probed["alignments"]
    attention = model.attention(SENTENCES, probed["best"])
    assert [a.target_pieces[-1] for a in attention] == ["</s>"] * len(SENTENCES)
    assert [len(a.weights) for a in attention] == [len(s.token_log_probs) for s in scores]
    with pytest.raises(ValueError, match="top_p"):
        model.sample(SENTENCES, top_p=1.5)
