#!/usr/bin/env python
"""Where a training step's time goes: the TensorFlow profile of a run, grouped by model part.

Profile some batches, then read the profile:

    python -m seq2seq.train experiment=peer_reference trainer.profile_steps=[20,29] ...
    python scripts/profile_breakdown.py <run>/tensorboard --steps 10

Prints one line a part: thread-milliseconds a step (the profile's per-op self time summed over
TensorFlow's threads, their idle time included), and its share. Parts:
the LSTM loops (forward and gradient, their matmuls apart from the rest), the matmuls and
einsums outside the loops, the other operations outside them by name scope (encoder,
decoder LSTMs, attention, output projection, dropout, loss, optimizer), the operations
without a scope (the metrics and the loss gradient), and the threads' idle time.

Reading the profile needs the `xprof` package (`pip install xprof`, in a separate virtual
environment if its protobuf clashes with TensorFlow's): the profile is a protocol buffer
that only the profiler's own tools convert.
"""

import argparse
import collections
import json
import re
from pathlib import Path

MATMUL_TYPES = ("MatMul", "Einsum", "BatchMatMul")
SCOPES = (  # the first that appears in an op's name names its part
    ("optimizer", ("adam", "clip_by_global_norm", "global_norm", "L2Loss")),
    ("dropout", ("dropout",)),
    ("loss", ("compile_loss",)),
    ("output projection", ("output_projection",)),
    ("attention", ("attention",)),
    ("encoder", ("encoder",)),
    ("decoder LSTMs", ("lstm",)),
)
FORWARD_LOOP = re.compile(r"/while/body")
GRADIENT_LOOP = re.compile(r"^while(_\d+)?/body")
CALL_PREFIX = re.compile(r"^(StatefulPartitionedCall(_\d+)?/)+")  # ops inside a called function


def part(name, op_type):
    """The part of the step an op belongs to, from its name and type."""
    if op_type == "IDLE":
        return "idle"
    name = CALL_PREFIX.sub("", name)
    is_matmul = any(kind in op_type for kind in MATMUL_TYPES)
    gradient, forward = GRADIENT_LOOP.search(name), FORWARD_LOOP.search(name)
    if gradient or forward:
        loop = "LSTM gradient loops" if gradient else "LSTM forward loops"
        return f"{loop}: matmul" if is_matmul else f"{loop}: other"
    if is_matmul:
        return "matmuls and einsums outside the loops"
    for label, keys in SCOPES:
        if any(key in name for key in keys):
            return label
    return "unscoped (metrics, loss gradient, ...)"


def breakdown(ops, steps):
    """`ops`: (name, type, self time in microseconds) -> [(part, thread-ms a step, share)]."""
    totals = collections.defaultdict(float)
    for name, op_type, micros in ops:
        totals[part(name, op_type)] += micros
    everything = sum(totals.values()) or 1.0
    rows = [(label, micros / steps / 1e3, micros / everything) for label, micros in totals.items()]
    return sorted(rows, key=lambda row: -row[1])


def read_profile(path):
    """(name, type, self time) of every op of the newest profile under `path` (needs xprof)."""
    profiles = sorted(Path(path).rglob("*.xplane.pb"), key=lambda p: p.stat().st_mtime)
    if not profiles:
        raise SystemExit(f"profile_breakdown: error: no *.xplane.pb under {path}")
    try:
        from xprof.convert import raw_to_tool_data
    except ImportError:
        message = "profile_breakdown: error: reading a profile needs `pip install xprof`"
        raise SystemExit(message) from None
    data, _ = raw_to_tool_data.xspace_to_tool_data([str(profiles[-1])], "framework_op_stats^", {})
    table = json.loads(data)[0]
    columns = [column["id"] for column in table["cols"]]
    name, op_type, self_time = (columns.index(c) for c in ("operation", "type", "total_self_time"))
    cells = ([cell["v"] for cell in row["c"]] for row in table["rows"])
    return [(row[name], row[op_type], row[self_time]) for row in cells]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("profile", help="a folder holding the profile (e.g. <run>/tensorboard)")
    parser.add_argument("--steps", type=int, required=True, help="batches the profile covers")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps {args.steps}: the profile covers at least one batch")
    rows = breakdown(read_profile(args.profile), args.steps)
    print(f"{'thread-ms/step':>15} {'share':>6}  part")
    for label, per_step, share in rows:
        print(f"{per_step:15.1f} {share:6.1%}  {label}")
    print(f"{sum(row[1] for row in rows):15.1f} {1:6.0%}  total")
    return rows


if __name__ == "__main__":
    main()
