"""Dynamic batching: rows from concurrent requests gathered into length-sorted batches.

A request hands in its rows (sentences, with their inputs) under a key: rows of the same key
can share a call (same signature, same scalar settings). A collector thread forms a batch when a
worker is free: once the oldest pending row's key has as many rows as the last call answered
(the clients it answered are likely to send again), or `max_batch_size` rows, or `max_wait_ms`
have passed since the worker was free and the row there. So a lone client waits for no one, and
clients that come back together share a call instead of splitting into a call of the first and
a call of the rest. The batch takes, from the rows of that key sorted by length, the
`max_batch_size` nearest in length to the oldest one (so that one is served, and a batch holds
similar lengths). While the workers are busy rows pile up, and the next batch is larger.

Batching never changes a result when the function it calls is batch-invariant, as the export's
translations are (`seq2seq.inference.search`); calls that are not are submitted whole, with
`call`, and run as they are. Standard library only.
"""

import collections
import concurrent.futures
import dataclasses
import threading
import time
from typing import Any


@dataclasses.dataclass(eq=False)  # rows are told apart by identity, never by their values
class Row:
    key: Any
    value: Any
    length: int
    future: concurrent.futures.Future
    arrival: float


@dataclasses.dataclass(eq=False)
class Call:
    function: Any
    future: concurrent.futures.Future


class Closed(RuntimeError):
    """The batcher is shutting down and takes no more work."""


class DynamicBatcher:
    """Runs `run_batch(key, values) -> results` (one result a value) on `workers` threads.

    Args:
        run_batch: called on a worker thread with a key and the values of up to
            `max_batch_size` rows submitted under it.
        max_batch_size: rows a call at most.
        max_wait_ms: how long the oldest row may wait for others to share its call.
        workers: calls running at once, each on its own thread.
    """

    def __init__(self, run_batch, *, max_batch_size, max_wait_ms, workers):
        if max_batch_size < 1 or workers < 1 or max_wait_ms < 0:
            raise ValueError(
                f"max_batch_size={max_batch_size} and workers={workers} must be >= 1, "
                f"max_wait_ms={max_wait_ms} >= 0"
            )
        self.run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self.workers = workers
        self._pending = collections.deque()
        self._changed = threading.Condition()
        self._free = threading.Semaphore(workers)
        self._work = collections.deque()
        self._work_ready = threading.Condition()
        self._closing = False
        self._last_rows = 1  # rows the last finished batch answered
        self._threads = [threading.Thread(target=self._collect, name="batcher", daemon=True)]
        self._threads += [
            threading.Thread(target=self._serve, name=f"batch-worker-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, key, values, lengths):
        """Queues rows under `key`; returns one future a row, resolving to its result."""
        now = time.monotonic()
        rows = [
            Row(key, value, length, concurrent.futures.Future(), now)
            for value, length in zip(values, lengths)
        ]
        self._enqueue(rows)
        return [row.future for row in rows]

    def call(self, function):
        """Queues `function()` to run whole on a worker; returns its future."""
        job = Call(function, concurrent.futures.Future())
        self._enqueue([job])
        return job.future

    def close(self):
        """Runs everything already queued (without waiting for more rows), then stops."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._threads[0].join()
        with self._work_ready:
            self._work.extend([None] * self.workers)
            self._work_ready.notify_all()
        for thread in self._threads[1:]:
            thread.join()

    def _enqueue(self, jobs):
        with self._changed:
            if self._closing:
                raise Closed("the server is shutting down")
            self._pending.extend(jobs)
            self._changed.notify_all()

    def _collect(self):
        while True:
            self._free.acquire()
            job = self._next_job(time.monotonic())
            if job is None:
                return
            with self._work_ready:
                self._work.append(job)
                self._work_ready.notify()

    def _next_job(self, free_since):
        """The next call or batch, once it is due; None when closing with nothing queued."""
        with self._changed:
            while not self._pending:
                if self._closing:
                    return None
                self._changed.wait()
            oldest = self._pending[0]
            if isinstance(oldest, Call):
                return self._pending.popleft()
            deadline = max(free_since, oldest.arrival) + self.max_wait
            enough = min(self._last_rows, self.max_batch_size)
            while not self._closing and self._count(oldest.key) < enough:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            batch = self._choose(oldest)
            for row in batch:
                self._pending.remove(row)
            return batch

    def _count(self, key):
        return sum(1 for job in self._pending if isinstance(job, Row) and job.key == key)

    def _choose(self, oldest):
        """Up to `max_batch_size` rows of the oldest row's key, nearest to it in length."""
        rows = [job for job in self._pending if isinstance(job, Row) and job.key == oldest.key]
        rows.sort(key=lambda row: row.length)  # stable: equal lengths stay in arrival order
        at = next(i for i, row in enumerate(rows) if row is oldest)
        start = max(0, min(at - self.max_batch_size // 2, len(rows) - self.max_batch_size))
        return rows[start : start + self.max_batch_size]

    def _serve(self):
        while True:
            with self._work_ready:
                while not self._work:
                    self._work_ready.wait()
                job = self._work.popleft()
            if job is None:
                return
            try:
                self._run(job)
            finally:
                if not isinstance(job, Call):
                    with self._changed:
                        self._last_rows = len(job)
                self._free.release()

    def _run(self, job):
        futures = [job.future] if isinstance(job, Call) else [row.future for row in job]
        try:
            if isinstance(job, Call):
                results = [job.function()]
            else:
                results = self.run_batch(job[0].key, [row.value for row in job])
        except BaseException as error:  # the requests of this batch get the error, others go on
            for future in futures:
                future.set_exception(error)
            return
        for future, result in zip(futures, results):
            future.set_result(result)
