"""Returning the C heap's free pages to the system during training."""

import subprocess
import sys
import textwrap
import weakref

import keras
import numpy as np
import pytest

from seq2seq import memory
from seq2seq.training.memory import ReleaseFreeMemory, release_training_graphs
from tests.conftest import REPO

# Frees 256 MiB of 64 KiB heap blocks but the last one, which keeps the heap from shrinking by
# itself; prints the resident MiB before and after `release_free_memory`.
FRAGMENTED_HEAP = textwrap.dedent("""
    import ctypes, ctypes.util
    from seq2seq.memory import release_free_memory
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    def rss():
        return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
    blocks = [libc.malloc(65536) for _ in range(4096)]
    for block in blocks:
        ctypes.memset(block, 1, 65536)
    for block in blocks[:-1]:
        libc.free(block)
    before = rss()
    print(release_free_memory(), before, rss())
""")


@pytest.mark.skipif(memory._malloc_trim() is None, reason="no glibc malloc_trim here")
def test_free_heap_pages_go_back_to_the_system():
    proc = subprocess.run(
        [sys.executable, "-c", FRAGMENTED_HEAP],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    released, before, after = proc.stdout.split()
    assert released == "True"
    assert float(before) - float(after) > 200, (before, after)


def test_the_callback_releases_every_n_batches_and_at_epoch_ends(monkeypatch):
    calls = []
    monkeypatch.setattr("seq2seq.training.memory.release_free_memory", lambda: calls.append(1))
    callback = ReleaseFreeMemory(every_n_steps=3)
    for batch in range(7):
        callback.on_train_batch_end(batch)
    assert len(calls) == 2
    callback.on_epoch_end(0)
    assert len(calls) == 3


def test_the_training_graphs_are_freed_and_traced_again_when_the_model_trains_again():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((4, 2), "float32"), np.ones((4, 1), "float32")
    model.fit(x, y, validation_data=(x, y), verbose=0)
    traced = weakref.ref(model.train_function), weakref.ref(model.test_function)
    release_training_graphs(model)
    assert model.train_function is None and model.test_function is None
    assert [ref() for ref in traced] == [None, None]  # nothing else kept them alive
    assert np.isfinite(model.fit(x, y, verbose=0).history["loss"][0])
