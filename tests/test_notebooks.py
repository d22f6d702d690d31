"""Executes the notebooks top to bottom (as committed, without outputs) in a fresh kernel."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import MULTI30K

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def notebook_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("notebooks")
    env = {
        "SEQ2SEQ_NOTEBOOK_RUN": str(root / "run"),
        "SEQ2SEQ_NOTEBOOK_DATA": str(root / "tfds"),
        "MULTI30K_DIR": str(MULTI30K),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield root
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def test_notebooks_are_committed_without_outputs():
    assert [p.name for p in NOTEBOOKS] == [
        "01_data_exploration.ipynb",
        "02_train_and_attention.ipynb",
        "03_load_export.ipynb",
    ]
    for path in NOTEBOOKS:
        book = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") for c in book.cells if c.cell_type == "code"), path.name


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, notebook_env):
    book = nbformat.read(path, as_version=4)
    NotebookClient(
        book,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(notebook_env)}},
    ).execute()
    images = [
        o for c in book.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})
    ]
    if path.stem != "03_load_export":
        assert images, "plots should render"
