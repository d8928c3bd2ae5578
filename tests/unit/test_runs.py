"""How many processes run the months side by side (pipelines/runs.py), the row counts the choice
rests on, and how `run_months` ends a month whose worker it lost track of."""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from assets.frames import count_rows
from pipelines import runs
from pipelines.progress import LogCollector
from pipelines.runs import (
    MONTH_PROCESSES,
    MONTH_ROWS_MAX,
    PARALLEL_FROM_MONTHS,
    PARALLEL_FROM_ROWS,
    choose_month_processes,
    count_month_rows,
)

SAMPLE_MONTHS = [41_000] * 12
"""About the built-in sample: twelve months of 41,000 person and plate queries."""


def test_the_sample_runs_two_months_at_a_time_on_two_processors():
    assert choose_month_processes(SAMPLE_MONTHS, processors=2) == MONTH_PROCESSES == 2
    assert choose_month_processes(SAMPLE_MONTHS, processors=8) == 2


@pytest.mark.parametrize("month_rows, processors, why", [
    (SAMPLE_MONTHS, 1, "one processor"),
    ([41_000] * (PARALLEL_FROM_MONTHS - 1), 2, "too few months"),
    ([PARALLEL_FROM_ROWS // 12 - 1] * 12, 2, "too few rows: the worker's start costs more"),
    ([7_000_000] * 12, 2, "a 50M year: two months at once would not fit the memory budget"),
    ([41_000] * 11 + [MONTH_ROWS_MAX + 1], 2, "one month too large"),
    ([41_000] * 11 + [None], 2, "a month of unknown size"),
])
def test_one_process_when(month_rows, processors, why):
    assert choose_month_processes(month_rows, processors) == 1, why


@given(st.lists(st.one_of(st.none(), st.integers(0, 10 * MONTH_ROWS_MAX)), max_size=30),
       st.integers(1, 64))
def test_never_more_than_two_processes_and_never_a_large_month_beside_another(month_rows,
                                                                              processors):
    chosen = choose_month_processes(month_rows, processors)
    assert chosen in (1, MONTH_PROCESSES)
    if chosen > 1:
        assert all(rows is not None and rows <= MONTH_ROWS_MAX for rows in month_rows)
        assert processors >= 2 and len(month_rows) >= PARALLEL_FROM_MONTHS


def test_rows_are_counted_from_parquet_metadata_and_csv_lines(tmp_path):
    frame = pl.DataFrame({"query_id": [f"q{i}" for i in range(1234)], "hit": [True] * 1234})
    landing = tmp_path / "landing"
    (landing / "meos" / "person_queries").mkdir(parents=True)
    (landing / "meos" / "plate_queries").mkdir(parents=True)
    frame.write_parquet(landing / "meos" / "person_queries" / "2025-01.parquet")
    frame.head(100).write_csv(landing / "meos" / "plate_queries" / "2025-01.csv")
    assert count_rows(landing / "meos" / "person_queries" / "2025-01.parquet") == 1234
    assert count_rows(landing / "meos" / "plate_queries" / "2025-01.csv") == 100
    assert count_month_rows(landing, "2025-01") == 1334
    assert count_month_rows(landing, "2025-02") == 0  # no file: the run says so, not the count
    (landing / "meos" / "person_queries" / "2025-03.parquet").write_bytes(b"not parquet")
    assert count_month_rows(landing, "2025-03") is None


def test_an_empty_csv_has_no_rows(tmp_path: Path):
    empty = tmp_path / "2025-01.csv"
    empty.write_bytes(b"")
    assert count_rows(empty) == 0


def test_months_side_by_side_refuse_an_ephemeral_instance():
    import dagster as dg

    from pipelines.runs import month_workers

    with pytest.raises(ValueError, match="instance with storage"):
        with month_workers(2, dg.DagsterInstance.ephemeral(), ("", "", "")):
            pass


# NOTE: the feeder thread's error is the case under test, not a fault of the test.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_month_still_running_in_its_worker_is_removed_only_once_the_worker_is_done(
        monkeypatch, tmp_path):
    # The thread that follows a worker's month stops on an error while the worker still runs
    # that month. The month is a failure, and its files are removed after the worker has written
    # them, not before (then they would stay in the warehouse, the month reported as failed).
    written: set[str] = set()
    removed: list[tuple[str, bool]] = []
    handed_over = threading.Event()
    messages: queue.Queue = queue.Queue()

    class Pool:
        def submit(self, function, month):
            handed_over.set()
            future: Future = Future()

            def work() -> None:
                messages.put((f"month {month}", 1, "raw_person_queries ok in 0.1 s"))
                # NOTE: the main process has long finished its own month by then.
                time.sleep(0.5)
                written.add(month)
                future.set_result([])

            threading.Thread(target=work, daemon=True).start()
            return future

    def run_here(defs, instance, job, *, partition, report):
        handed_over.wait(timeout=10)  # the worker has taken the other month
        return []

    def echo(line: str) -> None:
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("display broke")

    monkeypatch.setattr(runs, "execute", run_here)
    monkeypatch.setattr(runs, "remove_month",
                        lambda defs, warehouse, month: removed.append((month, month in written)))
    failures = runs.run_months(None, None, ["2025-01", "2025-02"], tmp_path,
                               workers=runs.MonthWorkers(Pool(), messages, 1),
                               progress=LogCollector(echo))
    assert len(failures) == 1 and "gave no outcome" in failures[0].message
    assert removed == [(failures[0].partition, True)]


def test_a_runs_own_event_log_is_written_without_fsync_and_the_instance_index_with(tmp_path):
    """Through Dagster itself, so that the test fails when Dagster moves its per-run files."""
    import dagster as dg
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @dg.asset
    def one() -> int:
        return 1

    runs.write_run_event_logs_unsynced()
    seen: list[tuple[str, int]] = []

    def record(connection, _record) -> None:
        cursor = connection.cursor()
        path = cursor.execute("PRAGMA database_list").fetchone()[2]
        seen.append((Path(path).name, cursor.execute("PRAGMA synchronous").fetchone()[0]))
        cursor.close()

    # NOTE: registered after `write_run_event_logs_unsynced`'s listener, so it sees its effect.
    event.listen(Engine, "connect", record)
    try:
        defs = dg.Definitions(assets=[one], jobs=[dg.define_asset_job("one_job", [one])])
        with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:
            assert runs.execute(defs, instance, "one_job") == []
            run_id = instance.get_runs()[0].run_id
    finally:
        event.remove(Engine, "connect", record)
    assert (tmp_path / "history" / "runs" / f"{run_id}.db").exists()
    by_file: dict[str, set[int]] = {}
    for name, synchronous in seen:
        by_file.setdefault(name, set()).add(synchronous)
    # NOTE: 0 is OFF, 2 is FULL, SQLite's default.
    assert by_file[f"{run_id}.db"] == {0}
    assert by_file["index.db"] == {2} and by_file["runs.db"] == {2}


def _connections_by_file(run) -> dict[str, int]:
    """New SQLite connections that `run()` opens, by file name."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    opened: dict[str, int] = {}

    def record(connection, _record) -> None:
        cursor = connection.cursor()
        name = Path(cursor.execute("PRAGMA database_list").fetchone()[2]).name
        cursor.close()
        opened[name] = opened.get(name, 0) + 1

    event.listen(Engine, "connect", record)
    try:
        run()
    finally:
        event.remove(Engine, "connect", record)
    return opened


def test_a_run_opens_each_instance_file_once_and_leaves_its_own_closed(tmp_path, monkeypatch):
    """Through Dagster itself: the run's events and materialisation are stored as before."""
    import dagster as dg

    @dg.asset(check_specs=[dg.AssetCheckSpec("positive", asset="one")])
    def one():
        yield dg.Output(1)
        yield dg.AssetCheckResult(check_name="positive", passed=True)

    defs = dg.Definitions(assets=[one], jobs=[dg.define_asset_job("one_job", [one])])
    runs.keep_connections()
    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:
        storage = instance.event_log_storage
        # NOTE: the instance's kept connections, opened before the runs are watched.
        with storage.index_connection(), instance.run_storage.connect():
            pass
        # NOTE: `has_table`, asked at each asset and check event, opens the index once per
        # table (Dagster's own: an engine and a connection each time).
        asked = []
        monkeypatch.setattr(storage, "has_table",
                            lambda name, own=storage.has_table: asked.append(name) or own(name))
        opened = _connections_by_file(
            lambda: [runs.execute(defs, instance, "one_job") for _ in range(2)])
        first, second = (r.run_id for r in instance.get_runs(ascending=True))
        for run_id in (first, second):
            assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS
        assert instance.get_latest_materialization_event(dg.AssetKey("one")).run_id == second
        assert instance.get_latest_asset_check_evaluation_record(
            dg.AssetCheckKey(dg.AssetKey("one"), "positive")).run_id == second
        # NOTE: a past run's events are read through Dagster's own connection, not kept.
        assert instance.all_logs(first)
        assert set(storage.__dict__[runs._ENGINES]) == {storage.conn_string_for_shard("index")}
    # NOTE: Dagster 1.13 opens a connection per event and per query: dozens per run. A run's
    # new file is opened a second time while its tables are made (`_initdb` inspects it).
    assert len(asked) > len(set(asked)) > 0
    assert opened == {"index.db": len(set(asked)), f"{first}.db": 2, f"{second}.db": 2}
    folder = tmp_path / "history" / "runs"
    assert not list(folder.glob(f"{first}.db-*")) and not list(folder.glob(f"{second}.db-*"))


def test_dagsters_own_storages_still_open_a_connection_per_use(tmp_path):
    """The methods `keep_connections` replaces: were they to keep their connections, the shim
    would be needless."""
    import dagster as dg

    runs.keep_connections()
    own_event_log = runs.DAGSTERS_OWN["SqliteEventLogStorage._connect"]
    own_run_storage = runs.DAGSTERS_OWN["SqliteRunStorage.connect"]
    own_has_table = runs.DAGSTERS_OWN["SqliteEventLogStorage.has_table"]
    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:

        def use_each_twice() -> None:
            for _ in range(2):
                with own_event_log(instance.event_log_storage, "index"):
                    pass
                with own_run_storage(instance.run_storage):
                    pass
                assert own_has_table(instance.event_log_storage, "asset_check_executions")

        assert _connections_by_file(use_each_twice) == {"index.db": 4, "runs.db": 2}


def test_keeping_connections_stops_when_dagster_no_longer_has_what_it_replaces(monkeypatch):
    from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage

    runs.keep_connections()
    monkeypatch.delattr(SqliteRunStorage, "connect")
    with pytest.raises(RuntimeError, match="SqliteRunStorage.connect is gone"):
        runs.keep_connections()


def test_the_statistics_go_beside_each_other_up_to_the_row_limit_only():
    assert runs.statistics_beside(SAMPLE_MONTHS)
    assert runs.statistics_beside([runs.STATISTICS_BESIDE_ROWS_MAX // 12] * 12)
    # NOTE: a 5M-query year has about 8.3M rows: its statistics keep two processors busy already.
    assert not runs.statistics_beside([700_000] * 12)
    assert not runs.statistics_beside([runs.STATISTICS_BESIDE_ROWS_MAX // 2, 1,
                                       runs.STATISTICS_BESIDE_ROWS_MAX // 2])
    assert not runs.statistics_beside([41_000, None, 41_000])
