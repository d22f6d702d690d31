#!/usr/bin/env python
"""Resident memory of a command over time: where in a run the memory goes.

Runs the command, samples its RSS (VmRSS, Linux) every `--every` seconds and writes one
"seconds MiB" line a sample to `--output`; prints the peak and when it happened as JSON:

    python scripts/rss_timeline.py --output rss.txt -- \
        python -m seq2seq.train experiment=peer_reference trainer.epochs=4 \
        trainer.precision=mixed_bfloat16 data.manual_dir=../shared/data/multi30k

The kernel's own peak (`ru_maxrss` of the child) is printed too: it also catches a peak
between two samples.
"""

import argparse
import json
import resource
import subprocess
import sys
import time


def rss_mib(pid):
    """The current resident memory of process `pid` in MiB, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        return None
    return None


def sample(command, every, output):
    start = time.monotonic()
    proc = subprocess.Popen(command)
    peak, peak_at = 0.0, 0.0
    with open(output, "w") as out:
        while proc.poll() is None:
            now, rss = time.monotonic() - start, rss_mib(proc.pid)
            if rss is not None:
                out.write(f"{now:.1f} {rss:.0f}\n")
                if rss > peak:
                    peak, peak_at = rss, now
            time.sleep(every)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the largest reaped child
    return {
        "returncode": proc.returncode,
        "seconds": round(time.monotonic() - start, 1),
        "sampled_peak_mib": round(peak),
        "sampled_peak_at_seconds": round(peak_at, 1),
        "kernel_peak_mib": round(children.ru_maxrss / 1024),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True, help="file of 'seconds MiB' samples")
    parser.add_argument("--every", type=float, default=0.5, help="seconds between samples")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (put it after --)")
    result = sample(command, args.every, args.output)
    print(json.dumps(result))
    return result["returncode"]


if __name__ == "__main__":
    sys.exit(main())
