"""Corpus-level scores with sacreBLEU, plus exact match for tasks with one right answer."""

import re

import sacrebleu
from sacremoses import MosesTokenizer


def corpus_scores(hypotheses, references):
    """sacreBLEU BLEU and chrF (detokenized, cased) with their signatures."""
    _check_lengths(hypotheses, references)
    bleu, chrf = sacrebleu.BLEU(), sacrebleu.CHRF()
    return {
        "bleu": bleu.corpus_score(hypotheses, [references]).score,
        "bleu_signature": str(bleu.get_signature()),
        "chrf": chrf.corpus_score(hypotheses, [references]).score,
        "chrf_signature": str(chrf.get_signature()),
    }


def ter_score(hypotheses, references):
    """sacreBLEU's TER with its defaults: case-insensitive (`case:lc` in its signature)."""
    ter = sacrebleu.TER()
    return {
        "ter": ter.corpus_score(hypotheses, [references]).score,
        "ter_signature": str(ter.get_signature()),
    }


def tokenized_lowercased_bleu(hypotheses, references, language):
    """BLEU as published Multi30k papers report it: Moses-tokenized, lowercased, no extra tokenizer.

    Hypotheses and references are tokenized with sacremoses' MosesTokenizer (`escape=False`)
    for the target language, then scored by sacreBLEU with `tokenize="none"` and
    `lowercase=True` (its signature says `case:lc`).
    """
    _check_lengths(hypotheses, references)
    moses = MosesTokenizer(lang=language)

    def prepare(lines):
        return [moses.tokenize(line, return_str=True, escape=False) for line in lines]

    bleu = sacrebleu.BLEU(tokenize="none", lowercase=True, force=True)
    score = bleu.corpus_score(prepare(hypotheses), [prepare(references)])
    return {
        "bleu_tok_lc": score.score,
        "bleu_tok_lc_signature": f"moses-tok:{language}|" + str(bleu.get_signature()),
    }


def exact_match(hypotheses, references):
    """Percentage of hypotheses equal to their reference after stripping outer whitespace."""
    _check_lengths(hypotheses, references)
    if not references:
        return 0.0
    hits = sum(h.strip() == r.strip() for h, r in zip(hypotheses, references))
    return 100.0 * hits / len(references)


def exact_match_by_group(hypotheses, references, groups):
    """`exact_match` within each group (e.g. "3 digits"), groups in natural order."""
    _check_lengths(hypotheses, groups)
    members = {}
    for index, group in enumerate(groups):
        members.setdefault(group, []).append(index)
    return {
        group: exact_match(
            [hypotheses[i] for i in members[group]], [references[i] for i in members[group]]
        )
        for group in sorted(members, key=_natural_key)
    }


def _natural_key(text):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def full_scores(hypotheses, references, language):
    """sacreBLEU BLEU/chrF/TER, tokenized lowercased BLEU and exact match, with signatures."""
    scores = corpus_scores(hypotheses, references)
    scores.update(ter_score(hypotheses, references))
    scores.update(tokenized_lowercased_bleu(hypotheses, references, language))
    scores["exact_match"] = exact_match(hypotheses, references)
    scores["sentences"] = len(hypotheses)
    return scores


def _check_lengths(hypotheses, references):
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
