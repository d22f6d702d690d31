"""Writes docs/configuration.md from the commented YAML files of conf/ (a test checks it).

python scripts/config_reference.py            # rewrite docs/configuration.md
python scripts/config_reference.py --check    # exit 1 if it is out of date
"""

import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GROUPS = {
    "data": ["numbers", "multi30k", "text", "tfds"],
    "model": ["lstm_attention", "tiny"],
    "trainer": ["default"],
    "decode": ["default"],
}
HEADER = """# Configuration reference

Every key of `conf/`, its default and what it does (generated from the YAML files' comments by
`python scripts/config_reference.py`); `seq2seq/config.py` types and range-checks them. Override
any key on the command line (`model.units=512`), choose a group option (`data=multi30k`), or pin
a recipe as differences in `conf/experiment/` (`experiment=...`).
"""
TOP_LEVEL = [
    ("seed", "1234", "seeds Python, NumPy and TensorFlow (weights, dropout, shuffling)"),
    ("export", "true", "write the SavedModel to `<run folder>/export`"),
    (
        "data.splits",
        "{}",
        "our split name -> the data set's split (or slice), e.g. "
        "`+data.splits.test=newstest2014`; by default train, validation (or dev, valid, val), test",
    ),
]
KEY = re.compile(r"^(\s*)([a-z_]+):\s*(.*?)\s*(?:#\s*(.*))?$")


def rows(path, group):
    """`| key | default | what |` rows of a group's YAML file."""
    found, parent = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        match = KEY.match(line)
        if not match or line.strip().startswith("#"):
            continue
        indent, key, value, comment = match.groups()
        if not indent and not value:  # a nested section, e.g. tokenizer:
            parent = key
            continue
        name = f"{group}.{parent}.{key}" if indent and parent else f"{group}.{key}"
        parent = parent if indent else None
        found.append(f"| `{name}` | `{value}` | {(comment or '').replace('|', '/')} |")
    return found


def reference():
    lines = [HEADER]
    for group, options in GROUPS.items():
        lines.append(f"## `{group}`\n")
        for option in options:
            lines.append(f"### `{group}={option}`\n")
            lines += ["| key | default | what |", "|---|---|---|"]
            lines += rows(REPO / "conf" / group / f"{option}.yaml", group)
            lines.append("")
    lines += ["## Top level and extra keys\n", "| key | default | what |", "|---|---|---|"]
    lines += [f"| `{key}` | `{value}` | {what} |" for key, value, what in TOP_LEVEL]
    lines.append("")
    lines.append("## Recipes (`experiment=`)\n")
    for path in sorted((REPO / "conf" / "experiment").glob("*.yaml")):
        text = path.read_text(encoding="utf-8").splitlines()[1:]
        about = " ".join(line[2:] for line in text if line.startswith("# "))
        lines.append(f"- `{path.stem}`: {about}")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")
    target = REPO / "docs" / "configuration.md"
    if parser.parse_args().check:
        return 0 if target.read_text(encoding="utf-8") == reference() else 1
    target.write_text(reference(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
