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
    if limit:
        ds = ds.take(limit)
    sources, references = [], []
    for ex in ds.as_numpy_iterator():
        sources.append(ex["source"].decode("utf-8"))
        references.append(ex["target"].decode("utf-8"))
    return sources, references


def evaluate(translate_fn, sources, references, *, batch_size, parallel=1, exact_match=False):
    """BLEU and chrF (with signatures), sentences/s, and exact match when asked."""
    start = time.monotonic()
    hypotheses = translate_sentences(translate_fn, sources, batch_size, parallel)
    seconds = time.monotonic() - start
    scores = metrics.corpus_scores(hypotheses, references)
    scores["sentences"] = len(sources)
    scores["sentences_per_second"] = len(sources) / max(seconds, 1e-9)
    if exact_match:
        scores["exact_match"] = metrics.exact_match(hypotheses, references)
    return scores, hypotheses
