"""Determinism and crash safety: a rerun gives byte-identical outputs; a run killed while writing
leaves no partial file, and the next run completes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import polars as pl

from pipelines.cli import run_pipeline


def file_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_rerun_is_byte_identical(pipeline_run, tmp_path):
    warehouse = tmp_path / "again"
    failures = run_pipeline(pipeline_run.landing, warehouse, dg.DagsterInstance.ephemeral())
    assert failures == []
    first, second = file_bytes(pipeline_run.warehouse), file_bytes(warehouse)
    assert first.keys() == second.keys()
    different = [name for name in first if first[name] != second[name]]
    assert different == []


KILL_WHILE_WRITING = textwrap.dedent("""
    import os, signal, sys
    import pipelines.io_managers as io

    real = io.write_parquet_atomic

    def write_then_die(frame, path, metadata):
        if path.name == "out_team_disproportionality.parquet":
            # write the temporary file, then die before the rename: a kill mid-write
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            frame.write_parquet(tmp)
            os.kill(os.getpid(), signal.SIGKILL)
        real(frame, path, metadata)

    io.write_parquet_atomic = write_then_die
    from pipelines.cli import main
    sys.exit(main(["run"]))
""")


def test_killed_run_leaves_no_partial_file_and_next_run_completes(pipeline_run, tmp_path):
    env = {**os.environ, "STOPCHECK_LANDING_DIR": str(pipeline_run.landing),
           "STOPCHECK_WAREHOUSE_DIR": str(tmp_path / "warehouse"),
           "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    killed = subprocess.run([sys.executable, "-c", KILL_WHILE_WRITING], env=env,
                            cwd=Path(__file__).resolve().parents[2], capture_output=True)
    assert killed.returncode == -9
    warehouse = tmp_path / "warehouse"
    assert not (warehouse / "out_team_disproportionality.parquet").exists()
    assert list(warehouse.glob(".out_team_disproportionality.parquet.*.tmp"))
    for path in warehouse.rglob("*.parquet"):
        pl.read_parquet(path)  # every visible file is complete

    rerun = subprocess.run([sys.executable, "-m", "pipelines.cli", "run"], env=env,
                           cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert not list(warehouse.rglob("*.tmp"))
    assert ((warehouse / "out_team_disproportionality.parquet").read_bytes()
            == (pipeline_run.warehouse / "out_team_disproportionality.parquet").read_bytes())
