"""Handing the C heap's free pages back to the system (training, and between export steps).

glibc's malloc keeps the pages of freed blocks resident: over a training run, resident memory
grows although the model and batches stay the same size (docs/performance.md). `malloc_trim(0)`
returns every free page of every arena (glibc >= 2.8). No maintained Python library wraps it; it
is one libc call. Standard library only.
"""

import ctypes
import ctypes.util
import functools
import gc


@functools.cache
def _malloc_trim():
    """glibc's `malloc_trim`, or None where the C library has none (musl, macOS, Windows)."""
    name = ctypes.util.find_library("c")  # runs ldconfig: looked up once
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


def release_free_memory():
    """Returns the heap's free pages to the system; False where that is not possible."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def release_unreachable():
    """Frees what nothing refers to any more (traced functions sit in reference cycles),
    then hands the free pages back."""
    gc.collect()
    release_free_memory()
