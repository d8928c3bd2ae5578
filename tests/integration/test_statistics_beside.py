"""The themes computed in the month worker beside the other statistics (pipelines/runs.py
`run_statistics`): the same tables and published files as one process, in runs of their own;
a worker lost before the statistics leaves its tables to the main process, and a year too
large for it ends the worker before the statistics."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import dagster as dg
import polars as pl
from polars.testing import assert_frame_equal

from pipelines import runs
from pipelines.cli import run_pipeline
from pipelines.progress import LogCollector
from pipelines.runs import STATISTICS_BESIDE


def assert_same_outputs(warehouse: Path, reference: Path, *, published: bool) -> None:
    tables = sorted(path.name for path in reference.glob("out_*.parquet"))
    assert tables and sorted(path.name for path in warehouse.glob("out_*.parquet")) == tables
    for name in tables:
        assert_frame_equal(pl.read_parquet(warehouse / name), pl.read_parquet(reference / name),
                           check_exact=True)
    if published:
        files = sorted(path.name for path in (reference / "publication").iterdir())
        assert sorted(path.name for path in (warehouse / "publication").iterdir()) == files
        for name in files:
            assert ((warehouse / "publication" / name).read_bytes()
                    == (reference / "publication" / name).read_bytes()), name


def test_the_themes_beside_the_other_statistics_give_the_outputs_of_one_process(pipeline_run,
                                                                                tmp_path):
    assert pipeline_run.failures == []
    lines: list[str] = []
    (tmp_path / "home").mkdir()
    with dg.DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        failures = run_pipeline(pipeline_run.landing, tmp_path / "warehouse", instance,
                                progress=LogCollector(lines.append), month_processes=2)
        assert failures == []

        def run_of(name: str) -> str:
            return instance.get_latest_materialization_event(dg.AssetKey(name)).run_id

        themes = {run_of(name) for name in STATISTICS_BESIDE}
        others = {run_of(name) for name in ("out_team_disproportionality", "out_repeat_checks",
                                            "out_veil_of_darkness")}
        assert len(themes) == 1 and len(others) == 1 and themes != others
        assert run_of("publication") not in themes | others
    assert_same_outputs(tmp_path / "warehouse", pipeline_run.warehouse, published=True)
    assert any("statistics and publication: out_thematic_disproportionality ok" in line
               for line in lines)


def test_a_worker_lost_before_the_statistics_leaves_the_themes_to_the_main_process(
        pipeline_run, tmp_path):
    lines: list[str] = []

    def echo(line: str) -> None:
        lines.append(line)
        # NOTE: the last month done: the worker is idle, and dies before it is given the themes.
        if line.endswith("(2/2 months)"):
            for child in multiprocessing.active_children():
                child.kill()
                child.join()

    (tmp_path / "home").mkdir()
    with dg.DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        failures = run_pipeline(pipeline_run.landing, tmp_path / "warehouse", instance,
                                progress=LogCollector(echo), month_processes=2, publish=False)
    assert failures == []
    assert any("the worker process ended without a result" in line for line in lines)
    assert_same_outputs(tmp_path / "warehouse", pipeline_run.warehouse, published=False)


def test_without_the_themes_beside_the_worker_ends_before_the_statistics(pipeline_run, tmp_path,
                                                                         monkeypatch):
    # NOTE: a year too large for two statistics processes (5M queries): the idle worker held
    # about 0.7 GB through the statistics until it was ended first.
    monkeypatch.setattr(runs, "STATISTICS_BESIDE_ROWS_MAX", 0)
    children_during_statistics: list[int] = []

    def echo(line: str) -> None:
        if "] statistics: " in line:
            children_during_statistics.append(len(multiprocessing.active_children()))

    (tmp_path / "home").mkdir()
    with dg.DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        failures = run_pipeline(pipeline_run.landing, tmp_path / "warehouse", instance,
                                progress=LogCollector(echo), month_processes=2, publish=False)
        assert failures == []
        runs_of = {instance.get_latest_materialization_event(dg.AssetKey(name)).run_id
                   for name in ("out_thematic_disproportionality", "out_team_disproportionality")}
    assert len(runs_of) == 1
    assert children_during_statistics and set(children_during_statistics) == {0}
    assert_same_outputs(tmp_path / "warehouse", pipeline_run.warehouse, published=False)
