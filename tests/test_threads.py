"""TensorFlow's intra-op pool for decoding processes, set in fresh processes."""

import json
import os
import subprocess
import sys

import pytest

from seq2seq.inference.threads import decoding_intra_op_threads

SHARES = [(2, 2, 1), (1, 2, 2), (2, 16, 8), (3, 16, 5), (4, 2, 1)]


@pytest.mark.parametrize(("parallel_batches", "cpus", "threads"), SHARES)
def test_each_concurrent_batch_gets_its_share_of_the_cores(parallel_batches, cpus, threads):
    assert decoding_intra_op_threads(parallel_batches, cpus) == threads


def run_python(code, **env):
    environment = {k: v for k, v in os.environ.items() if k != "TF_NUM_INTRAOP_THREADS"}
    environment.update(TF_CPP_MIN_LOG_LEVEL="2", **env)
    child = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment, check=True
    )
    return child.stderr, json.loads(child.stdout.strip().splitlines()[-1])


CONFIGURE = """
import json, tensorflow as tf
from seq2seq.inference.threads import configure_decoding_threads
{before}
returned = configure_decoding_threads({args})
tf.constant(1) + 1  # TensorFlow starts with the pool set
print(json.dumps([returned, tf.config.threading.get_intra_op_parallelism_threads()]))
"""


def test_the_pool_is_set_before_tensorflow_starts():
    _, (returned, pool) = run_python(CONFIGURE.format(before="", args="2, 3"))
    assert returned == pool == 3
    _, (returned, pool) = run_python(CONFIGURE.format(before="", args="4"))
    assert returned == pool == decoding_intra_op_threads(4)


def test_the_environment_variable_wins():
    code = CONFIGURE.format(before="", args="2, 3")
    _, (returned, pool) = run_python(code, TF_NUM_INTRAOP_THREADS="1")
    assert (returned, pool) == (1, 0)  # 0: TensorFlow reads the variable itself


def test_after_tensorflow_started_the_pool_is_kept_with_a_warning():
    code = CONFIGURE.format(before="tf.constant(1) + 1", args="2, 1")
    stderr, (returned, pool) = run_python(code)
    assert returned == pool == 0
    assert "intra-op threads stay at TensorFlow's default (TensorFlow already started), not 1" in (
        stderr
    )
