"""Translating many sentences: length-sorted batches, several in flight, results in input order.

Sentences are sorted by length (characters) before batching, so a batch holds sentences of
similar length and little padding; results come back in input order. Decoding is
batch-invariant (`seq2seq.inference.search`), so the batching does not change any translation.
Standard library only.
"""

import collections
import concurrent.futures
import itertools
import sys
import time


def translate_sorted(translate_batch, sentences, batch_size, on_batch=None, parallel=1, length=len):
    """Translates in batches of similar length; returns the results in input order.

    Args:
        translate_batch: list of sentences -> list of results, one per sentence.
        sentences: the sentences (or any items: pairs to score), any order.
        batch_size: sentences per call of `translate_batch`.
        on_batch: optional callback, called after each batch with the number of sentences done.
        parallel: batches in flight at once, each call on its own thread. TensorFlow runs them
            side by side: one search alone leaves a CPU core idle much of the time. Results
            are the same, in the same order.
        length: item -> the length it is sorted by.
    """
    order = sorted(range(len(sentences)), key=lambda i: length(sentences[i]))  # stable sort
    chunks = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    results = [None] * len(sentences)
    done = 0
    for chunk, outputs in zip(chunks, _map_in_order(translate_batch, sentences, chunks, parallel)):
        for i, result in zip(chunk, outputs):
            results[i] = result
        done += len(chunk)
        if on_batch:
            on_batch(done)
    return results


def _map_in_order(translate_batch, sentences, chunks, parallel):
    """`translate_batch` of each chunk's sentences, in chunk order, `parallel` at a time.

    The first batch runs alone on the calling thread: a `tf.function` traces there, where
    Keras's settings (the dtype policy among them) are set; they are thread-local.
    """
    texts = ([sentences[i] for i in chunk] for chunk in chunks)
    if parallel <= 1:
        yield from map(translate_batch, texts)
        return
    for first in itertools.islice(texts, 1):
        yield translate_batch(first)
    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        pending = collections.deque()
        for batch in texts:
            pending.append(pool.submit(translate_batch, batch))
            if len(pending) >= parallel:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


class Progress:
    """`on_batch` callback printing sentences done and sentences/s every `every` batches.

    Short inputs (fewer than `every` batches) print nothing; long ones also get a final line.
    """

    def __init__(self, total, every=10, stream=None):
        self.total = total
        self.every = every
        self.stream = stream or sys.stderr
        self.batches = 0
        self.start = time.monotonic()

    def __call__(self, done):
        self.batches += 1
        last = done == self.total
        if self.batches % self.every == 0 or (last and self.batches > self.every):
            rate = done / max(time.monotonic() - self.start, 1e-9)
            print(
                f"translated {done}/{self.total} sentences, {rate:.1f} sentences/s",
                file=self.stream,
                flush=True,
            )
