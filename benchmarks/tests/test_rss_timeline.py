"""scripts/rss_timeline.py: a child's memory over time and its peak."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "rss_timeline.py"


def test_samples_and_peak_of_a_child_that_holds_200_mib(tmp_path):
    child = "import time; x = bytearray(200 * 2**20); time.sleep(1.5)"
    out = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--output",
            str(tmp_path / "rss.txt"),
            "--every",
            "0.1",
            "--",
            sys.executable,
            "-c",
            child,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout)
    assert result["returncode"] == 0
    assert 200 <= result["sampled_peak_mib"] <= result["kernel_peak_mib"] + 1
    samples = [line.split() for line in (tmp_path / "rss.txt").read_text().splitlines()]
    assert len(samples) >= 5 and max(float(mib) for _, mib in samples) >= 200


def test_a_missing_command_is_refused():
    spec = importlib.util.spec_from_file_location("rss_timeline", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        module.main(["--output", "x.txt"])
    except SystemExit as exit:
        assert exit.code == 2
    else:
        raise AssertionError("no error for a missing command")
