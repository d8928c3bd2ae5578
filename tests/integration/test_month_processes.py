"""The monthly runs side by side (pipelines/runs.py): a worker process gives the same monthly
tables as the main process alone, a bad month still fails alone, and a worker that dies fails
its month with a message saying so while the other months go on."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from assets.frames import list_months
from assets.synthetic import SampleSpec, generate_sample
from pipelines.definitions import build_definitions
from pipelines.progress import LogCollector
from pipelines.runs import execute, month_workers, run_months
from tests import corpus

FOUR_MONTHS = SampleSpec(seed=11, months=4, person_queries=8_000, plate_queries=5_000)
BAD = "2025-03"


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    """Four small months; the person queries of 2025-03 are truncated (that month fails)."""
    landing = tmp_path_factory.mktemp("four_months")
    generate_sample(landing, FOUR_MONTHS)
    corpus.truncate_file(landing, "person", BAD)
    return landing


def load_months(landing: Path, root: Path, processes: int, echo=lambda line: None,
                before_months=lambda: None):
    """Reference job, then every month with `processes` processes, on a SQLite instance (a
    worker reaches it through its storage); return the failures and the warehouse.
    `before_months` runs once the workers are started, before the first month."""
    warehouse, home = root / "warehouse", root / "dagster_home"
    home.mkdir(parents=True)
    with dg.DagsterInstance.local_temp(str(home)) as instance:
        months = list_months(landing)
        instance.add_dynamic_partitions("month", months)
        defs = build_definitions(str(landing), str(warehouse), "")
        assert execute(defs, instance, "reference_job") == []
        with month_workers(processes, instance, (str(landing), str(warehouse), "")) as workers:
            before_months()
            failures = run_months(defs, instance, months, warehouse, workers=workers,
                                  progress=LogCollector(echo))
    return failures, warehouse


def monthly_tables(warehouse: Path) -> dict[str, pl.DataFrame]:
    return {str(path.relative_to(warehouse)): pl.read_parquet(path)
            for path in sorted(warehouse.glob("*/20??-??.parquet"))}


def test_two_processes_give_the_tables_and_failures_of_one(landing, tmp_path):
    alone, alone_warehouse = load_months(landing, tmp_path / "one", 1)
    lines: list[str] = []
    side_by_side, warehouse = load_months(landing, tmp_path / "two", 2, lines.append)
    assert [(f.step, f.partition) for f in alone] == [("raw_person_queries", BAD)]
    assert side_by_side == alone
    expected, found = monthly_tables(alone_warehouse), monthly_tables(warehouse)
    assert sorted(found) == sorted(expected)
    assert not any(BAD in name for name in found)  # the failed month left no file
    for name, frame in expected.items():
        assert_frame_equal(found[name], frame, check_exact=True)
    # every month's steps reported under its own month, whichever process ran it
    for month in list_months(landing):
        assert any(f"] month {month}: raw_person_queries " in line for line in lines), month
    assert sorted(line.split("] ")[1].split(" in ")[0] for line in lines
                  if line.endswith("months)")) == [
        "2025-01 ok", "2025-02 ok", f"{BAD} FAILED", "2025-04 ok"]


def test_the_worker_starts_before_it_is_given_a_month(landing, tmp_path):
    # NOTE: it imports while the main process runs the reference tables (pipelines/cli.py).
    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:
        with month_workers(2, instance, (str(landing), str(tmp_path / "warehouse"), "")) as workers:
            assert workers.count == 1
            assert len(multiprocessing.active_children()) == 1
        assert multiprocessing.active_children() == []
    with month_workers(1, None, ("", "", "")) as workers:
        assert workers is None


def test_a_worker_that_dies_fails_its_month_and_the_main_process_runs_the_rest(landing,
                                                                               tmp_path):
    killed: list[str] = []

    def echo(line: str) -> None:
        # NOTE: news of the worker's month reaches the collector from the thread that feeds the
        # worker: the first of it kills the worker in the middle of that month.
        if not killed and threading.current_thread() is not threading.main_thread():
            killed.append(line.split("] month ")[1][:7])
            for child in multiprocessing.active_children():
                child.kill()

    failures, warehouse = load_months(landing, tmp_path, 2, echo)
    assert killed, "the worker never reported"
    dead = [f for f in failures if "worker process" in f.message]
    assert [f.partition for f in dead] == killed
    assert f"stopcheck run --backfill {killed[0]} {killed[0]}" in dead[0].message
    # the other months ran (the truncated one failed on its own, as always)
    assert {f.partition for f in failures} == {killed[0], BAD}
    done = {path.stem for path in (warehouse / "core_person_queries").glob("*.parquet")}
    assert done == set(list_months(landing)) - {killed[0], BAD}


def test_a_worker_killed_before_its_first_month_fails_one_month_and_the_rest_run(landing,
                                                                               tmp_path):
    # NOTE: the worker starts before the reference tables (`month_workers`): one that dies
    # while it starts (out of memory) leaves a broken pool, and the month handed to it fails.
    def kill_worker() -> None:
        for child in multiprocessing.active_children():
            child.kill()
            child.join()

    failures, warehouse = load_months(landing, tmp_path, 2, before_months=kill_worker)
    dead = [f for f in failures if "worker process" in f.message]
    assert len(dead) == 1
    assert f"stopcheck run --backfill {dead[0].partition}" in dead[0].message
    assert {f.partition for f in failures} == {dead[0].partition, BAD}
    done = {path.stem for path in (warehouse / "core_person_queries").glob("*.parquet")}
    assert done == set(list_months(landing)) - {dead[0].partition, BAD}


# NOTE: the feeder thread dies of the broken display on purpose; pytest would report its
# exception as a warning of the run.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_month_whose_feeder_stops_is_a_failure_not_a_month_left_out(landing, tmp_path):
    stopped: list[str] = []

    def echo(line: str) -> None:
        # NOTE: an error in the thread that feeds the worker (here: in the progress display)
        # stops that thread while the worker's month has no outcome yet.
        if not stopped and threading.current_thread() is not threading.main_thread():
            stopped.append(line.split("] month ")[1][:7])
            raise RuntimeError("display broke")

    failures, warehouse = load_months(landing, tmp_path, 2, echo)
    assert stopped
    unfinished = [f for f in failures if "gave no outcome" in f.message]
    assert [f.partition for f in unfinished] == stopped
    done = {path.stem for path in (warehouse / "core_person_queries").glob("*.parquet")}
    assert stopped[0] not in done and BAD not in done
    assert done == set(list_months(landing)) - {stopped[0], BAD}
