"""Determinism and crash safety: a rerun gives byte-identical outputs; a real writer
(assets/atomic.py) killed while it writes leaves the old file whole, and the next run completes."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from assets.atomic import write_parquet_atomic
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


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path

    import numpy as np
    import polars as pl

    from assets.atomic import write_parquet_atomic

    # NOTE: 128 MB of incompressible numbers: the write takes a good fraction of a second, so
    # the parent sees the file grow and kills the writer while it writes.
    rng = np.random.default_rng(1)
    frame = pl.DataFrame({f"c{i}": rng.integers(0, 2**62, 4_000_000) for i in range(4)})
    path = Path(sys.argv[1])
    if sys.argv[2] == "atomic":
        write_parquet_atomic(frame, path, {"stopcheck:code_version": "killed"})
    else:  # a writer that is not atomic: the harness must catch it
        frame.write_parquet(path)
""")


def kill_mid_write(path: Path, writer: str) -> None:
    """Start a real writer of a large frame to `path` in a subprocess and SIGKILL it as soon as
    bytes of the new file reach the disk (the temporary file, or `path` itself)."""
    before = path.stat()
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(path), writer],
                             cwd=Path(__file__).resolve().parents[2])
    deadline = time.monotonic() + 300
    try:
        while True:
            now = path.stat()
            temporary = [p for p in path.parent.glob(f".{path.name}.*.tmp") if p.stat().st_size]
            if temporary or (now.st_size, now.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
                break
            assert child.poll() is None, "the writer finished before it could be killed"
            assert time.monotonic() < deadline, "the writer wrote nothing"
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL


@pytest.mark.parametrize("writer", ["atomic", "naive"])
def test_a_writer_killed_mid_write_leaves_the_old_file_whole(tmp_path, writer):
    path = tmp_path / "out_table.parquet"
    old = pl.DataFrame({"c0": [1, 2, 3]})
    write_parquet_atomic(old, path, {})
    old_bytes = path.read_bytes()
    kill_mid_write(path, writer)
    if writer == "naive":
        # NOTE: proves the kill lands mid-write: a non-atomic writer leaves a broken file.
        assert path.read_bytes() != old_bytes
        with pytest.raises(Exception):  # noqa: B017, PT011 - any reader error will do
            pl.read_parquet(path)
        return
    assert path.read_bytes() == old_bytes
    assert [p.stat().st_size > 0 for p in tmp_path.glob(".out_table.parquet.*.tmp")] == [True]
    # the next write of the same output replaces it whole and clears the leftover
    write_parquet_atomic(pl.DataFrame({"c0": [4]}), path, {})
    assert pl.read_parquet(path)["c0"].to_list() == [4]
    assert not list(tmp_path.glob(".*.tmp"))


def test_the_run_after_a_killed_write_completes(pipeline_run, tmp_path):
    warehouse = shutil.copytree(pipeline_run.warehouse, tmp_path / "warehouse")
    target = warehouse / "out_team_disproportionality.parquet"
    kill_mid_write(target, "atomic")
    assert target.read_bytes() == (pipeline_run.warehouse / target.name).read_bytes()
    assert list(warehouse.glob(f".{target.name}.*.tmp"))
    assert run_pipeline(pipeline_run.landing, warehouse, dg.DagsterInstance.ephemeral()) == []
    assert not list(warehouse.rglob("*.tmp"))
    assert file_bytes(warehouse) == file_bytes(pipeline_run.warehouse)
