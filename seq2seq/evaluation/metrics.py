"""Corpus-level scores with sacreBLEU, plus exact match for tasks with one right answer."""

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
    ter = sacrebleu.TER()
    return {
        "ter": ter.corpus_score(hypotheses, [references]).score,
        "ter_signature": str(ter.get_signature()),
    }


def tokenized_lowercased_bleu(hypotheses, references, language):
    """BLEU as published Multi30k papers report it: Moses-tokenized, lowercased, no extra tokenizer.

    Hypotheses and references are tokenized with sacremoses' MosesTokenizer (`escape=False`)
    for the target language, lowercased, then scored by sacreBLEU with `tokenize="none"`.
    """
    _check_lengths(hypotheses, references)
    moses = MosesTokenizer(lang=language)

    def prepare(lines):
        return [moses.tokenize(line, return_str=True, escape=False).lower() for line in lines]

    bleu = sacrebleu.BLEU(tokenize="none", force=True)
    score = bleu.corpus_score(prepare(hypotheses), [prepare(references)])
    return {
        "bleu_tok_lc": score.score,
        "bleu_tok_lc_signature": f"moses-tok:{language}|lc|" + str(bleu.get_signature()),
    }


def exact_match(hypotheses, references):
    """Percentage of hypotheses equal to their reference after stripping outer whitespace."""
    _check_lengths(hypotheses, references)
    if not references:
        return 0.0
    hits = sum(h.strip() == r.strip() for h, r in zip(hypotheses, references))
    return 100.0 * hits / len(references)


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
