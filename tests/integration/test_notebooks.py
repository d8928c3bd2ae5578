"""The researchers' notebooks run headless against the sample warehouse and show aggregates only.

Each notebook is executed once, in memory (nothing is written into the repository), by the
`python3` kernel of this virtualenv, with STOPCHECK_WAREHOUSE_DIR / STOPCHECK_LANDING_DIR pointing
at the session's pipeline run. The environment is handed to the kernel process; this process's
own environment is not changed.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass

import nbformat
import pytest
from jupyter_client import KernelManager
from nbclient import NotebookClient

from assets.provenance import PROJECT_ROOT

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
NOTEBOOKS = ("01_run_overview.ipynb", "02_team_deep_dive.ipynb")
KERNEL_NAME = "python3"
FIGURE_MIME_TYPES = ("image/svg+xml", "image/png")
EXPECTED_TEXT = {
    "01_run_overview.ipynb": ("Synthetic data", "quarantined rows in total", "suppressed cells:",
                              "rate_ratio_ci_low"),
    # NOTE: group labels appear only in the recomputation at origin_level="group".
    "02_team_deep_dive.ipynb": ("Synthetic data", "team AMS-W2, ", "highest_over_lowest",
                                "Buiten Europa"),
}

PSEUDONYM = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])", re.IGNORECASE)
"""A 64-hex pseudonym (person, officer, plate) as delivered in the landing zone."""
QUERY_ID = re.compile(r"(?<![0-9A-Za-z])[PK]\d{6}-")
"""A query_id of the sample (P202501-00000001, K202501-...): a row-level identifier."""


def test_kernel_is_this_virtualenv():
    """The kernel nbclient starts is this venv's python, which has the project installed."""
    command = KernelManager(kernel_name=KERNEL_NAME).format_kernel_cmd()
    assert os.path.abspath(command[0]) == os.path.abspath(sys.executable)


@dataclass(frozen=True)
class Executed:
    name: str
    notebook: nbformat.NotebookNode


@pytest.fixture(scope="module", params=NOTEBOOKS)
def executed(request, pipeline_run) -> Executed:
    """The notebook after a headless run against the session's warehouse (kept in memory)."""
    assert pipeline_run.failures == [], "the pipeline run behind the notebooks failed"
    notebook = nbformat.read(NOTEBOOK_DIR / request.param, as_version=4)
    env = {
        **os.environ,
        "STOPCHECK_WAREHOUSE_DIR": str(pipeline_run.warehouse),
        "STOPCHECK_LANDING_DIR": str(pipeline_run.landing),
    }
    client = NotebookClient(
        notebook, kernel_name=KERNEL_NAME, timeout=120,
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    # NOTE: nbclient raises CellExecutionError on the first failing cell; its message names
    # the cell and the exception.
    client.execute(env=env)
    return Executed(request.param, notebook)


def outputs_of(notebook: nbformat.NotebookNode) -> list[dict]:
    return [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]


def test_every_code_cell_ran_without_error(executed):
    code_cells = [c for c in executed.notebook.cells if c.cell_type == "code"]
    assert code_cells
    assert all(c.execution_count is not None for c in code_cells)
    errors = [o for o in outputs_of(executed.notebook) if o.output_type == "error"]
    assert errors == []


def test_shows_a_figure(executed):
    figures = [o for o in outputs_of(executed.notebook)
               if any(mime in o.get("data", {}) for mime in FIGURE_MIME_TYPES)]
    assert figures, "no SVG or PNG figure in the outputs"
    svg = figures[0]["data"].get("image/svg+xml", "")
    assert not svg or "<svg" in svg


def test_outputs_hold_no_row_level_identifier(executed):
    text = json.dumps(outputs_of(executed.notebook))
    assert PSEUDONYM.search(text) is None, "an output holds a 64-hex pseudonym"
    assert QUERY_ID.search(text) is None, "an output holds a query_id"


def test_ratio_tables_passed_disclosure_control(executed):
    """The ratio tables shown carry the flags that disclosure control adds."""
    text = json.dumps(outputs_of(executed.notebook))
    assert "is_suppressed" in text


def test_shows_its_sections(executed):
    """Each notebook reaches its last section: text only its final cells produce."""
    text = json.dumps(outputs_of(executed.notebook))
    for expected in EXPECTED_TEXT[executed.name]:
        assert expected in text


def test_identifier_patterns_would_be_caught():
    """The two privacy patterns above match what they are meant to catch."""
    assert PSEUDONYM.search("x " + "ab12" * 16 + " y")
    assert not PSEUDONYM.search("code version 0.1.0+2d9a3ed310aa")
    assert QUERY_ID.search('"P202501-00000001"') and QUERY_ID.search("K202502-00000042")
    assert not QUERY_ID.search("AMS-W2 2025-01")
