"""Compiled CPU ops for training (`kernels/*.cc`): the LSTM step, the loss and its metrics.

- `seq2seq_lstm_cell`, `seq2seq_lstm_cell_grad` (`kernels/lstm_cell.cc`): an LSTM step's gate
  arithmetic forward and backward, each one op.
- `seq2seq_smoothed_cross_entropy`, `seq2seq_smoothed_cross_entropy_grad`,
  `seq2seq_token_statistics` (`kernels/cross_entropy.cc`): the label-smoothed cross-entropy
  over the logits, its gradient, and the NLL and accuracy of each token, each in one pass.

Why by hand: TensorFlow runs each element-wise step of these as its own kernel and its own pass
over memory, and computes bfloat16 one element at a time (docs/performance.md measures the
gain). No maintained library ships such ops for TensorFlow 2.21's CPU kernels: its own
`LSTMBlockCell`/`BlockLSTMV2` have no bfloat16 CPU kernel and are slower than our loop.

The ops are compiled against the installed TensorFlow with the C++ compiler (`$CXX`, default
`g++`) the first time they are needed, into a cache folder (`$SEQ2SEQ_KERNEL_CACHE`, default
`~/.cache/seq2seq/kernels`) keyed by the source, TensorFlow's build and the CPU; later runs load
them from there. If they cannot be built, `load()` logs why, once, and returns None, and the
layers use TensorFlow's own ops. `SEQ2SEQ_FUSED_OPS=0` turns them off. They run
on the CPU only: where a GPU is visible, the callers use TensorFlow's ops (and cuDNN).
"""

import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
from pathlib import Path

import tensorflow as tf

log = logging.getLogger(__name__)

SOURCES = tuple(sorted((Path(__file__).parent / "kernels").glob("*.cc")))
# -march=native without AVX512-FP16: TensorFlow 2.21's Eigen headers do not compile with it.
ARCH_FLAG_CHOICES = (["-march=native", "-mno-avx512fp16"], ["-march=native"], [])


def enabled():
    """False when `SEQ2SEQ_FUSED_OPS=0` asks for TensorFlow's own ops."""
    return os.environ.get("SEQ2SEQ_FUSED_OPS", "1") != "0"


def cache_dir():
    default = Path.home() / ".cache" / "seq2seq" / "kernels"
    return Path(os.environ.get("SEQ2SEQ_KERNEL_CACHE", default))


def _cpu_description():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return next((line for line in cpuinfo if line.startswith("flags")), "")
    except OSError:
        return platform.processor()


def library_path(compiler):
    """Where the library built from this source for this TensorFlow and CPU lives."""
    key = hashlib.sha256()
    for part in (
        *(source.read_bytes() for source in SOURCES),
        tf.__version__,
        " ".join(tf.sysconfig.get_compile_flags()),
        compiler,
        platform.machine(),
        _cpu_description(),
    ):
        key.update(part if isinstance(part, bytes) else part.encode())
    return cache_dir() / f"seq2seq_ops_{key.hexdigest()[:16]}.so"


def compile_library(compiler, target):
    """Builds the ops into `target` (written atomically); None, or the compiler's first error
    line."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create {target.parent}: {exc.strerror}"
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    error = None
    for arch_flags in ARCH_FLAG_CHOICES:
        command = [
            compiler,
            "-O3",
            *arch_flags,
            "-shared",
            "-fPIC",
            "-w",
            *map(str, SOURCES),
            "-o",
            str(partial),
            *tf.sysconfig.get_compile_flags(),
            *tf.sysconfig.get_link_flags(),
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            error = str(exc)
            continue
        if done.returncode == 0:
            os.replace(partial, target)
            return None
        error = _first_error(done.stderr) or f"exit code {done.returncode}"
    partial.unlink(missing_ok=True)
    return error


def _first_error(compiler_output):
    lines = compiler_output.strip().splitlines()
    return next((line for line in lines if "error" in line), lines[-1] if lines else None)


@functools.cache
def load():
    """The loaded op library, or None (then the callers use TensorFlow's ops)."""
    if not enabled():
        log.info("fused ops off (SEQ2SEQ_FUSED_OPS=0): TensorFlow's ops are used")
        return None
    if tf.config.list_logical_devices("GPU"):
        return None
    compiler = os.environ.get("CXX", "g++")
    if shutil.which(compiler) is None:
        log.warning("fused ops unavailable: no C++ compiler %r found (set CXX)", compiler)
        return None
    target = library_path(compiler)
    if not target.exists():
        log.info("compiling the fused ops into %s", target)
        error = compile_library(compiler, target)
        if error is not None:
            log.warning("fused ops unavailable: %s failed: %s", compiler, error)
            return None
    try:
        library = tf.load_op_library(str(target))
    except (tf.errors.NotFoundError, OSError) as exc:
        log.warning("fused ops unavailable: loading %s failed: %s", target, exc)
        return None
    log.info("fused ops loaded from %s", target)
    return library
