"""The benchmark scripts still run against the current code (they are not timed here)."""

from __future__ import annotations

import json
import os
from pathlib import Path
import shutil
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


def test_the_time_outside_runs_counts_overlapping_runs_once(monkeypatch):
    # The monthly runs go side by side on two processes: summing their times overstated the
    # time in runs (the 5M report once gave start-up as -16.7 s).
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_scale", REPO / "benchmarks" / "run_scale.py")
    run_scale = importlib.util.module_from_spec(spec)
    # NOTE: dataclasses look their module up in sys.modules while the module runs.
    monkeypatch.setitem(sys.modules, "run_scale", run_scale)
    spec.loader.exec_module(run_scale)

    def run(start: float, seconds: float):
        return run_scale.RunTiming("monthly_job", None, seconds, seconds, started_at=start)

    runs = [run(10.0, 4.0), run(12.0, 4.0), run(20.0, 1.0), run(13.0, 1.0)]
    assert run_scale.seconds_in_runs(runs) == 7.0
    assert run_scale.seconds_in_runs([]) == 0.0


def test_design_bounds_benchmark_checks_both_alternatives_against_the_code(pipeline_run):
    # The figures of docs/performance.md's "What the two ratio targets would take": each
    # alternative is checked against what the pipeline computes (the same cells; the same sums
    # of squares), or the script fails.
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "design_bounds.py"),
         "--warehouse", str(pipeline_run.warehouse), "--rounds", "1"],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "the summed cells equal the team tables' own: True" in done.stdout
    assert "the range's sums of squares agree with the cross products: True" in done.stdout
    assert done.stdout.count(" s ") >= 10


def test_statistics_steps_benchmark_compares_a_baseline_with_the_checkout(pipeline_run,
                                                                         tmp_path):
    # The harness docs/performance.md uses for the team tables and the themes: a baseline (here
    # a copy of this checkout's assets/, so that no git is needed) against this checkout,
    # alternated, outputs compared. The folders are given relative to the working folder,
    # which each version's process does not share.
    shutil.copytree(REPO / "assets", tmp_path / "baseline" / "assets",
                    ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "statistics_steps.py"),
         "--warehouse", os.path.relpath(pipeline_run.warehouse, REPO),
         "--landing", os.path.relpath(pipeline_run.landing, REPO),
         "--baseline-tree", str(tmp_path / "baseline"), "--rounds", "1"],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stdout.count("current / baseline (medians)") == 2
    assert "'out_team_disproportionality': " in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "outputs identical"


def test_statistics_steps_baseline_never_runs_a_module_of_the_checkout(pipeline_run,
                                                                      tmp_path):
    # A baseline from before assets/team_tables.py: the editable install would serve that
    # module from this checkout, and the baseline would be timed with the current code.
    shutil.copytree(REPO / "assets", tmp_path / "baseline" / "assets",
                    ignore=shutil.ignore_patterns("__pycache__", "team_tables.py"))
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "statistics_steps.py"),
         "--warehouse", str(pipeline_run.warehouse), "--landing", str(pipeline_run.landing),
         "--baseline-tree", str(tmp_path / "baseline"), "--rounds", "1", "--steps", "team"],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )
    assert done.returncode != 0
    assert "team with " in done.stderr and "No module named 'assets.team_tables'" in done.stderr


def test_statistics_steps_benchmark_names_a_table_that_differs(tmp_path, monkeypatch):
    import importlib.util

    import polars as pl

    path = REPO / "benchmarks" / "statistics_steps.py"
    spec = importlib.util.spec_from_file_location("statistics_steps", path)
    steps = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "statistics_steps", steps)
    spec.loader.exec_module(steps)
    first, other = tmp_path / "first", tmp_path / "other"
    first.mkdir()
    other.mkdir()
    for folder, last in ((first, 0.1), (other, 0.1 + 1e-15)):
        pl.DataFrame({"ratio": [1.0, last]}).write_parquet(folder / "out_a.parquet")
        pl.DataFrame({"count": [1, 2]}).write_parquet(folder / "out_b.parquet")
    assert steps._same_tables(first, other) == ["out_a"]
    (other / "out_b.parquet").unlink()
    assert steps._same_tables(first, other) == ["out_a", "out_b"]
