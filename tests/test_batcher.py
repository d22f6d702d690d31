"""The dynamic batcher, with plain Python functions in place of a model."""

import concurrent.futures
import threading

import pytest

from seq2seq.inference.batcher import Closed, DynamicBatcher


class Recorder:
    """A batch function that records every call and can hold the calls until released."""

    def __init__(self):
        self.calls = []
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Semaphore(0)

    def __call__(self, key, values):
        self.calls.append((key, list(values)))
        self.entered.release()
        self.release.wait(timeout=30)
        return [f"{key}:{value}" for value in values]


def _results(futures):
    return [future.result(timeout=30) for future in futures]


def test_each_row_gets_its_own_result_under_concurrent_submissions():
    recorder = Recorder()
    batcher = DynamicBatcher(recorder, max_batch_size=5, max_wait_ms=5, workers=2)
    requests = [(f"k{i % 3}", [f"r{i}-{j}" for j in range(i % 4 + 1)]) for i in range(40)]

    def send(key_values):
        key, values = key_values
        return batcher.submit(key, values, [len(v) for v in values])

    recorder.release.clear()  # the first calls hold both workers while the rest queue up
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        pending = list(pool.map(send, requests))
    recorder.release.set()
    answers = [_results(futures) for futures in pending]
    batcher.close()
    assert answers == [[f"{key}:{value}" for value in values] for key, values in requests]
    assert all(len(values) <= 5 for _, values in recorder.calls)
    rows_of = {}
    for key, values in requests:
        rows_of.setdefault(key, set()).update(values)
    assert all(set(values) <= rows_of[key] for key, values in recorder.calls)  # one key a call
    assert max(len(values) for _, values in recorder.calls) > 4  # requests shared calls


def test_rows_that_wait_while_the_workers_are_busy_share_one_call():
    recorder = Recorder()
    batcher = DynamicBatcher(recorder, max_batch_size=8, max_wait_ms=0, workers=1)
    recorder.release.clear()
    first = batcher.submit("k", ["first"], [5])
    assert recorder.entered.acquire(timeout=30)  # the only worker is busy with "first"
    later = [batcher.submit("k", [f"v{i}"], [2]) for i in range(6)]
    recorder.release.set()
    assert _results(first) == ["k:first"]
    assert [_results(f)[0] for f in later] == [f"k:v{i}" for i in range(6)]
    batcher.close()
    assert [values for _, values in recorder.calls] == [["first"], [f"v{i}" for i in range(6)]]


def test_a_batch_takes_the_rows_nearest_in_length_to_the_oldest():
    recorder = Recorder()
    batcher = DynamicBatcher(recorder, max_batch_size=3, max_wait_ms=0, workers=1)
    recorder.release.clear()
    batcher.submit("k", ["busy"], [1])
    assert recorder.entered.acquire(timeout=30)
    lengths = {"a": 50, "b": 1, "c": 48, "d": 2, "e": 52, "f": 3}  # "a" is the oldest
    futures = [batcher.submit("k", [value], [length])[0] for value, length in lengths.items()]
    recorder.release.set()
    _results(futures)
    batcher.close()
    batches = [values for _, values in recorder.calls[1:]]
    assert batches == [["c", "a", "e"], ["b", "d", "f"]]  # sorted by length inside a call


def test_keys_never_share_a_call_and_a_partial_batch_goes_after_the_wait():
    recorder = Recorder()
    batcher = DynamicBatcher(recorder, max_batch_size=100, max_wait_ms=50, workers=1)
    a = batcher.submit(("translate_options", 3), ["x", "y"], [1, 1])
    b = batcher.submit(("translate_options", 5), ["x"], [1])
    assert _results(a) + _results(b) == [
        "('translate_options', 3):x",
        "('translate_options', 3):y",
        "('translate_options', 5):x",
    ]
    batcher.close()
    assert sorted(len(values) for _, values in recorder.calls) == [1, 2]


def test_a_failing_call_fails_its_own_rows_only_and_whole_calls_run_as_given():
    def run_batch(key, values):
        if key == "bad":
            raise ValueError("no such thing")
        return values

    batcher = DynamicBatcher(run_batch, max_batch_size=4, max_wait_ms=1, workers=2)
    bad = batcher.submit("bad", ["x"], [1])
    good = batcher.submit("good", ["y"], [1])
    whole = batcher.call(lambda: "whole")
    with pytest.raises(ValueError, match="no such thing"):
        bad[0].result(timeout=30)
    assert _results(good) == ["y"]
    assert whole.result(timeout=30) == "whole"
    batcher.close()


def test_close_finishes_what_is_queued_then_refuses_more():
    recorder = Recorder()
    batcher = DynamicBatcher(recorder, max_batch_size=2, max_wait_ms=10_000, workers=1)
    futures = batcher.submit("k", ["a", "b", "c"], [1, 1, 1])
    batcher.close()  # does not wait the 10 s for more rows
    assert _results(futures) == ["k:a", "k:b", "k:c"]
    with pytest.raises(Closed):
        batcher.submit("k", ["d"], [1])


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="max_batch_size=0"):
        DynamicBatcher(lambda key, values: values, max_batch_size=0, max_wait_ms=1, workers=1)


def test_a_lone_row_goes_at_once_and_rows_after_a_shared_call_wait_for_as_many():
    recorder = Recorder()
    batcher = DynamicBatcher(recorder, max_batch_size=8, max_wait_ms=600_000, workers=1)
    assert _results(batcher.submit("k", ["solo"], [1])) == ["k:solo"]  # not held 10 minutes
    assert _results(batcher.submit("k", ["a", "b", "c"], [1, 1, 1])) == ["k:a", "k:b", "k:c"]
    x = batcher.submit("k", ["x"], [1])  # the last call answered 3 rows: x waits for 2 more
    y, z = batcher.submit("k", ["y"], [1]), batcher.submit("k", ["z"], [1])
    assert [_results(f)[0] for f in (x, y, z)] == ["k:x", "k:y", "k:z"]
    batcher.close()
    assert [values for _, values in recorder.calls] == [["solo"], ["a", "b", "c"], ["x", "y", "z"]]
