"""Translating lists of sentences in length-sorted batches, and scoring them."""

import time

import tensorflow as tf

from seq2seq.evaluation import metrics
from seq2seq.inference.batching import translate_sorted


def translate_sentences(translate_fn, sentences, batch_size, parallel=1):
    """Translates in length-sorted batches (less padding); returns outputs in input order,
    `parallel` batches at a time (`seq2seq.inference.batching`).

    `translate_fn` maps a (batch,) tf.string tensor to {"translation": (batch,) tf.string}.
    """

    def translate_batch(batch):
        out = translate_fn(tf.constant(batch, tf.string))["translation"].numpy()
        return [text.decode("utf-8") for text in out]

    return translate_sorted(translate_batch, sentences, batch_size, parallel=parallel)


def split_texts(ds, limit=None):
    """A {"source", "target"} dataset -> (sources, references) Python string lists."""
    return _read(ds, limit, "source"), _read(ds, limit, "target")


def split_groups(ds, limit=None):
    """The examples' evaluation groups (e.g. the numbers task's digit counts), or None when the
    data set has none."""
    return _read(ds, limit, "group") if "group" in ds.element_spec else None


def _read(ds, limit, key):
    if limit:
        ds = ds.take(limit)
    return [text.decode("utf-8") for text in ds.map(lambda ex: ex[key]).as_numpy_iterator()]


def evaluate(translate_fn, sources, references, *, batch_size, parallel=1, groups=None):
    """BLEU, chrF and TER (with signatures) and sentences/s; with `groups` (one a sentence),
    exact match overall and per group too. Returns the scores and the hypotheses."""
    start = time.monotonic()
    hypotheses = translate_sentences(translate_fn, sources, batch_size, parallel)
    seconds = time.monotonic() - start
    scores = metrics.corpus_scores(hypotheses, references)
    scores.update(metrics.ter_score(hypotheses, references))
    scores["sentences"] = len(sources)
    scores["sentences_per_second"] = len(sources) / max(seconds, 1e-9)
    if groups is not None:
        scores["exact_match"] = metrics.exact_match(hypotheses, references)
        scores["exact_match_by_group"] = metrics.exact_match_by_group(
            hypotheses, references, groups
        )
    return scores, hypotheses
