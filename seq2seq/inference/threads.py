"""TensorFlow's intra-op thread pool for processes that decode several batches at once.

A beam search is a loop of small operations. With `parallel_batches` searches running side by
side, each already keeps a core busy; letting every small operation also split itself over
TensorFlow's intra-op pool (one thread a core by default) only adds hand-offs between threads
(docs/performance.md measures both).

Training wants the default pool (its large matmuls split well), and the pool can only be set
before TensorFlow runs its first operation, so only the processes that decode and do not train
(`seq2seq.translate`, `seq2seq.evaluate`, the server, the decoding half of the benchmark)
set it.
Imports no TensorFlow until it sets the pool.
"""

import logging
import os

log = logging.getLogger(__name__)

ENV_VARIABLE = "TF_NUM_INTRAOP_THREADS"


def decoding_intra_op_threads(parallel_batches, cpus=None):
    """Intra-op threads for `parallel_batches` concurrent searches: the cores each one gets."""
    cpus = cpus or os.cpu_count() or 1
    return max(1, cpus // max(1, parallel_batches))


def configure_decoding_threads(parallel_batches, intra_op_threads=None):
    """Sets TensorFlow's intra-op pool for decoding; returns the size it runs with (0: the
    default TensorFlow chose, one thread a core).

    `intra_op_threads` None picks `decoding_intra_op_threads(parallel_batches)`. The environment
    variable `TF_NUM_INTRAOP_THREADS`, when set, wins: nothing is changed. Call it before
    TensorFlow runs any operation; later, the pool it already has is kept (with a warning).
    """
    if os.environ.get(ENV_VARIABLE):
        return int(os.environ[ENV_VARIABLE])
    import tensorflow as tf

    wanted = intra_op_threads or decoding_intra_op_threads(parallel_batches)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(wanted)
    except RuntimeError:  # TensorFlow is initialized: its pool is fixed
        kept = tf.config.threading.get_intra_op_parallelism_threads()
        log.warning(
            "intra-op threads stay at %s (TensorFlow already started), not %s",
            kept or "TensorFlow's default",
            wanted,
        )
        return kept
    return wanted
