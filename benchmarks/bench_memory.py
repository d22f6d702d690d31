#!/usr/bin/env python
"""Peak memory of training as the training set grows: one JSON line a size.

Each size is a fresh `python -m seq2seq.train` process on the numbers data set (prepared by
its TFDS builder on the first run, then streamed), trained for `--minutes` of wall-clock;
its peak RSS comes from the kernel (wait4), with the preparation and without it:

    python scripts/bench_memory.py --sizes 30000 1000000 --data-dir /tmp/tfds_mem
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def _peak_rss_mb(command):
    """(seconds, peak RSS in MB, return code) of a child process."""
    start = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace")
    if proc.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{err[-2000:]}")
    return time.monotonic() - start, usage.ru_maxrss / 1024


def _train_command(size, data_dir, run_dir, minutes, extra):
    return [
        sys.executable,
        "-m",
        "seq2seq.train",
        "data=numbers",
        "model=tiny",
        f"data.train_size={size}",
        "data.max_number=9999999",
        f"data.data_dir={data_dir}",
        "trainer.epochs=1",
        f"trainer.max_minutes={minutes}",
        "export=false",
        f"hydra.run.dir={run_dir}",
        *extra,
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[30_000, 1_000_000])
    parser.add_argument("--data-dir", required=True, help="TFDS data dir (prepared on first use)")
    parser.add_argument("--minutes", type=float, default=1.0, help="training time a size")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides")
    args = parser.parse_args(argv)
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            runs = []
            for attempt in ("first", "prepared"):  # the first run also prepares the data set
                command = _train_command(
                    size, args.data_dir, f"{tmp}/{attempt}", args.minutes, args.overrides
                )
                runs.append(_peak_rss_mb(command))
        (first_s, first_mb), (run_s, run_mb) = runs
        print(
            json.dumps(
                {
                    "train_pairs": size,
                    "peak_rss_mb": round(run_mb),
                    "seconds": round(run_s),
                    "peak_rss_mb_first_run": round(first_mb),
                    "seconds_first_run": round(first_s),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
