"""sacreBLEU scores and their signatures; exact match overall and per group."""

import pytest
import sacrebleu
from sacremoses import MosesTokenizer

from seq2seq.evaluation import metrics

HYPOTHESES = ["Ein Hund läuft über die Wiese.", "Zwei Männer, die Fußball spielen!"]
REFERENCES = ["Ein Hund rennt über die Wiese.", "zwei Männer spielen Fußball."]


def test_identical_text_scores_100_with_its_signature():
    scores = metrics.corpus_scores(REFERENCES, REFERENCES)
    assert scores["bleu"] == pytest.approx(100.0) and scores["chrf"] == pytest.approx(100.0)
    assert scores["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")


def test_tokenized_lowercased_bleu_is_moses_tokens_scored_lowercased():
    """Its signature says what it is (case:lc), and the score is that of lowercasing by hand."""
    scores = metrics.tokenized_lowercased_bleu(HYPOTHESES, REFERENCES, "de")
    assert scores["bleu_tok_lc_signature"].startswith("moses-tok:de|nrefs:1|case:lc|")
    moses = MosesTokenizer(lang="de")

    def by_hand(lines):
        return [moses.tokenize(x, return_str=True, escape=False).lower() for x in lines]

    expected = sacrebleu.BLEU(tokenize="none").corpus_score(
        by_hand(HYPOTHESES), [by_hand(REFERENCES)]
    )
    assert scores["bleu_tok_lc"] == pytest.approx(expected.score)


def test_ter_is_sacrebleus_default_case_insensitive():
    scores = metrics.ter_score(["A DOG RUNS"], ["a dog runs"])
    assert scores["ter"] == 0.0 and "case:lc" in scores["ter_signature"]


def test_exact_match_per_group_in_natural_order():
    hypotheses = ["one", "two", "ten", "eleven", "100"]
    references = ["one", "2", "ten", "twelve", "100"]
    groups = ["1 digit", "1 digit", "2 digits", "2 digits", "10 digits"]
    assert metrics.exact_match(hypotheses, references) == pytest.approx(60.0)
    assert metrics.exact_match_by_group(hypotheses, references, groups) == {
        "1 digit": 50.0,
        "2 digits": 50.0,
        "10 digits": 100.0,
    }
    assert list(metrics.exact_match_by_group(hypotheses, references, groups)) == [
        "1 digit",
        "2 digits",
        "10 digits",
    ]
