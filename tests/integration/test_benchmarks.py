"""The benchmark scripts still run against the current code (they are not timed here)."""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys

REPO = Path(__file__).resolve().parents[2]


def test_gx_benchmark_gives_the_same_outcomes_both_ways(pipeline_run):
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gx_suites.py"),
         "--warehouse", str(pipeline_run.warehouse), "--suites", "core_person_queries"],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "core_person_queries" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "outcomes identical"
