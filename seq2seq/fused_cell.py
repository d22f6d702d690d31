"""The LSTM step's gate arithmetic as two compiled CPU ops (`kernels/lstm_cell.cc`).

Why by hand: TensorFlow runs each of an LSTM step's dozen element-wise operations as its own
kernel, and computes bfloat16 one element at a time; over a training step of the reference
configuration that was about a fifth of the time. No maintained library ships a fused LSTM cell
for TensorFlow 2.21's CPU kernels: its own `LSTMBlockCell`/`BlockLSTMV2` have no bfloat16 CPU
kernel and were 4.5x slower than our loop in float32.

The ops are compiled against the installed TensorFlow with the C++ compiler (`$CXX`, default
`g++`) the first time they are needed, into a cache folder (`$SEQ2SEQ_KERNEL_CACHE`, default
`~/.cache/seq2seq/kernels`) keyed by the source, TensorFlow's build and the CPU; later runs load
them from there. If they cannot be built, `load()` logs why, once, and returns None, and the
layers use TensorFlow's own ops. `SEQ2SEQ_FUSED_CELL=0` turns them off.
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

SOURCE = Path(__file__).parent / "kernels" / "lstm_cell.cc"
# -march=native without AVX512-FP16: TensorFlow 2.21's Eigen headers do not compile with it.
ARCH_FLAG_CHOICES = (["-march=native", "-mno-avx512fp16"], ["-march=native"], [])


def enabled():
    """False when `SEQ2SEQ_FUSED_CELL=0` asks for TensorFlow's own ops."""
    return os.environ.get("SEQ2SEQ_FUSED_CELL", "1") != "0"


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
        SOURCE.read_bytes(), tf.__version__.encode(), " ".join(tf.sysconfig.get_compile_flags()),
        compiler, platform.machine(), _cpu_description(),
    ):  # fmt: skip
        key.update(part if isinstance(part, bytes) else part.encode())
    return cache_dir() / f"lstm_cell_{key.hexdigest()[:16]}.so"


def compile_library(compiler, target):
    """Builds the ops into `target` (written atomically); returns the compiler's last error or
    None."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    error = None
    for arch_flags in ARCH_FLAG_CHOICES:
        command = [
            compiler, "-O3", *arch_flags, "-shared", "-fPIC", "-w", str(SOURCE), "-o", str(partial),
            *tf.sysconfig.get_compile_flags(), *tf.sysconfig.get_link_flags(),
        ]  # fmt: skip
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            error = str(exc)
            continue
        if done.returncode == 0:
            os.replace(partial, target)
            return None
        error = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
    partial.unlink(missing_ok=True)
    return error


@functools.cache
def load():
    """The loaded op library (`seq2seq_lstm_cell`, `seq2seq_lstm_cell_grad`), or None."""
    if not enabled():
        log.info("fused LSTM cell off (SEQ2SEQ_FUSED_CELL=0): TensorFlow's ops are used")
        return None
    compiler = os.environ.get("CXX", "g++")
    if shutil.which(compiler) is None:
        log.warning("fused LSTM cell unavailable: no C++ compiler %r found (set CXX)", compiler)
        return None
    target = library_path(compiler)
    if not target.exists():
        log.info("compiling the fused LSTM cell into %s", target)
        error = compile_library(compiler, target)
        if error is not None:
            log.warning("fused LSTM cell unavailable: %s failed: %s", compiler, error)
            return None
    try:
        return tf.load_op_library(str(target))
    except (tf.errors.NotFoundError, OSError) as exc:
        log.warning("fused LSTM cell unavailable: loading %s failed: %s", target, exc)
        return None
