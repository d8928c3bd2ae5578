"""Committed notebooks carry no outputs (the check `nbstripout --verify` makes) and run anywhere.

Outputs of a notebook run on real data must not reach git: every notebook under notebooks/ is
stored without outputs, execution counts or run-time cell metadata, and with the kernelspec and
language_info metadata that nbclient and papermill need.
"""

from __future__ import annotations

import re

import nbformat
import pytest

from assets.provenance import PROJECT_ROOT

NOTEBOOKS = sorted(
    p for p in (PROJECT_ROOT / "notebooks").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
)
RUNTIME_CELL_METADATA = ("execution", "ExecuteTime", "collapsed", "scrolled")
"""Cell metadata written by running or viewing a notebook (nbstripout removes these too)."""
RUNTIME_NOTEBOOK_METADATA = ("widgets", "signature")
PREVIEW_CALL = re.compile(r"\.(head|tail|sample|glimpse|describe)\(")
"""Row previews and column summaries: house rule 9 keeps them out of anything that leaves."""


def notebook_id(path) -> str:
    return path.relative_to(PROJECT_ROOT).as_posix()


def test_the_notebooks_are_there():
    names = {p.name for p in NOTEBOOKS}
    assert {"01_run_overview.ipynb", "02_team_deep_dive.ipynb"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=notebook_id)
def test_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    nbformat.validate(notebook)
    with_output = [
        cell.get("id", str(i)) for i, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert with_output == [], f"cells with outputs or an execution count: {with_output}"
    with_runtime_metadata = [
        cell.get("id", str(i)) for i, cell in enumerate(notebook.cells)
        if set(cell.get("metadata", {})) & set(RUNTIME_CELL_METADATA)
    ]
    assert with_runtime_metadata == []
    assert not set(notebook.metadata) & set(RUNTIME_NOTEBOOK_METADATA)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=notebook_id)
def test_has_kernel_and_language_metadata(path):
    notebook = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    kernelspec = notebook.metadata.get("kernelspec", {})
    assert kernelspec.get("name") == "python3"
    assert kernelspec.get("language") == "python"
    assert kernelspec.get("display_name")
    assert notebook.metadata.get("language_info", {}).get("name") == "python"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=notebook_id)
def test_no_row_previews(path):
    notebook = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    previews = [
        cell.get("id") for cell in notebook.cells
        if cell.cell_type == "code" and PREVIEW_CALL.search(cell.source)
    ]
    assert previews == [], f"cells with head()/sample()/describe() previews: {previews}"


def test_team_deep_dive_has_a_parameters_cell():
    notebook = nbformat.read(PROJECT_ROOT / "notebooks" / "02_team_deep_dive.ipynb",
                             as_version=nbformat.NO_CONVERT)
    tagged = [c for c in notebook.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    assert tagged[0].cell_type == "code"
    assert re.search(r'^TEAM = "[^"]+"$', tagged[0].source, re.MULTILINE)
