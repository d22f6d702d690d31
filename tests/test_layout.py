"""The package's architecture, checked: imports go one way, and modules stay readable."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "seq2seq"

# Lower layers never import higher ones; entry points are imported by no one.
LAYERS = {
    "base": 0,  # seq2seq.config, files, lines, memory, run_folder
    "data": 1,
    "model": 2,
    "inference": 3,
    "evaluation": 4,
    "training": 5,
    "cli": 6,  # what the entry points share
}
ENTRY_POINTS = {"train", "translate", "evaluate", "ensemble", "score", "serve", "average"}
MAX_LINES = 400


def _module_name(path):
    return ".".join(("seq2seq", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(
        ".__init__"
    )


def _layer(module):
    """The layer of a `seq2seq...` module, or "entry" for an entry point."""
    parts = module.split(".")
    if len(parts) == 1:
        return "base"
    if parts[1] in ENTRY_POINTS:
        return "entry"
    return parts[1] if parts[1] in LAYERS else "base"


def _imports(source):
    """Every `seq2seq` module a module's source imports, also inside functions."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("seq2seq")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("seq2seq"):
            for alias in node.names:  # a submodule, or a name from the module
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if _existing(submodule) else node.module)
    return found


def _modules():
    return sorted(PACKAGE.rglob("*.py"))


def _sources():
    return {_module_name(path): path.read_text(encoding="utf-8") for path in _modules()}


def _existing(module):
    path = PACKAGE.parent / Path(*module.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _violations(sources):
    found = []
    for importer, source in sources.items():
        for imported in _imports(source):
            theirs = _layer(imported)
            if theirs == "entry" and imported != importer:
                found.append(f"{importer} imports the entry point {imported}")
            elif theirs != "entry" and _layer(importer) != "entry":
                if LAYERS[theirs] > LAYERS[_layer(importer)]:
                    found.append(f"{importer} ({_layer(importer)}) imports {imported} ({theirs})")
    return found


def test_imports_point_from_higher_layers_to_lower_ones_only():
    assert not _violations(_sources())


def test_the_check_catches_a_backward_import_and_an_imported_entry_point():
    probes = {
        "seq2seq.model.probe": "def f():\n    from seq2seq.training import fit\n",
        "seq2seq.inference.probe": "import seq2seq.translate\n",
    }
    assert _violations(probes) == [
        "seq2seq.model.probe (model) imports seq2seq.training.fit (training)",
        "seq2seq.inference.probe imports the entry point seq2seq.translate",
    ]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_400_lines(path):
    assert len(path.read_text(encoding="utf-8").splitlines()) <= MAX_LINES


def test_the_package_shows_the_pipeline():
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert {"data", "model", "training", "inference", "evaluation"} <= folders
