"""The benchmark scripts still run against the current code (they are not timed here)."""

from __future__ import annotations

import json
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


def test_scale_benchmark_runs_end_to_end_on_a_small_sample(tmp_path):
    # The harness of docs/performance.md on 20k person queries over two months: every stage
    # runs, the report and scale_result.json come out, the profile is read back.
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run_scale.py"), "--queries", "20000",
         "--months", "2", "--keep", str(tmp_path), "--max-rss-gb", "6"],
        capture_output=True, text=True, cwd=REPO, timeout=900,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "target met" in done.stdout or "target missed" in done.stdout
    result = json.loads((tmp_path / "scale_result.json").read_text())
    assert {s["name"] for s in result["stages"]} >= {"floor_string", "stopcheck run"}
    steps = {s["step"] for s in result["steps"]}
    assert {"core_queries", "core_person_queries_gx_suite"} <= steps
    assert result["ratio_to_floor"] > 0
