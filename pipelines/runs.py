"""In-process runs of `stopcheck run`: one job run with its failures and progress, and the
monthly runs, side by side in two processes where the months are small enough.

The monthly job runs once per month, so that a bad month fails alone. On the built-in sample and
at 5M queries most of a month's run is single-threaded Python (Great Expectations building its
metric graphs, Dagster writing its events), so a second process on a second processor runs the
next month meanwhile: the main process and one spawned worker each take the next month as they
finish one (`run_months`). Every month is still one Dagster run of the monthly job on the same
instance, with the same outputs; only the order of the runs in the event log changes.
docs/performance.md has the measurements and the limits (`choose_month_processes`). On small
years the worker then computes the themes beside the other statistics (`run_statistics`).

Messages are our own and aggregate: they never hold a value from a person table.
"""

from __future__ import annotations

import atexit
import gc
import multiprocessing
import queue
import re
import sqlite3
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.progress import Collector

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
"""Console logging of in-process runs: warnings and errors only (the event log keeps all)."""

MONTH_PROCESSES = 2
"""Processes that run months side by side when `choose_month_processes` allows it. NOTE: two,
whatever the machine: the memory limit below is budgeted for two monthly runs at once, and more
processes on two processors only contend (measured: docs/performance.md)."""

MONTH_ROWS_MAX = 2_000_000
"""The largest month (person and plate query rows) run beside another; larger months run one
at a time. Two 7M-row months of a 50M-query year side by side (each 3.1 GB alone) took 23–27 s
each instead of 13–16 s, the processors being busy already, and 8.2 GB together: 11 s saved in
a 334 s run did not pay for going over 8 GB (docs/performance.md)."""

PARALLEL_FROM_ROWS = 100_000
"""Fewer query rows over the months to load run in one process: starting the worker (importing
Dagster, GX and the statistics: 4–5 s of a processor) costs more than it saves."""

PARALLEL_FROM_MONTHS = 4
"""Fewer months to load run in one process, for the same reason."""


@dataclass(frozen=True)
class StepFailure:
    """A failed step of a run: which asset (or check), which partition, and our message."""

    job: str
    step: str
    partition: str | None
    message: str

    def __str__(self) -> str:
        where = f" [{self.partition}]" if self.partition else ""
        return f"{self.step}{where}: " + self.message.replace("\n", "\n    ")


def step_failures(result, job: str, partition: str | None) -> list[StepFailure]:
    """The failed steps of an in-process run result, each with our innermost message."""
    failures = []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.event_specific_data.error
            # NOTE: the innermost cause is our own message (InputError, RawIdentifierError ...);
            # the outer ones are Dagster's wrappers. It is shown in full: assets/privacy.py has
            # already replaced any message that may quote person-level values.
            while error.cause is not None:
                error = error.cause
            message = error.message.strip() if error.message else error.cls_name
            failures.append(StepFailure(job, event.step_key, partition, message))
    if not result.success and not failures:
        failures.append(StepFailure(job, job, partition, "run failed"))
    return failures


Report = Callable[[int, str], None]
"""Where a step reporter sends its news: `report(inc, message)`."""


def step_reporter(report: Report):
    """An event-log listener that reports each step as it starts (inc 0) and finishes (inc 1,
    with its duration)."""
    from dagster import DagsterEventType

    started: dict[str, float] = {}

    def listen(entry) -> None:
        if not entry.is_dagster_event or entry.step_key is None:
            return
        kind = entry.get_dagster_event().event_type
        if kind == DagsterEventType.STEP_START:
            started[entry.step_key] = entry.timestamp
            report(0, f"{entry.step_key} ...")
        elif kind in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            seconds = entry.timestamp - started.get(entry.step_key, entry.timestamp)
            outcome = "ok" if kind == DagsterEventType.STEP_SUCCESS else "FAILED"
            report(1, f"{entry.step_key} {outcome} in {seconds:.1f} s")

    return listen


RUN_EVENT_LOG = re.compile(
    r"[/\\]runs[/\\][0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.db$")
"""The SQLite file of one run's event log in a local Dagster instance
(``DAGSTER_HOME/history/runs/<run id>.db``)."""


def _unsynced_run_event_log(connection, _record) -> None:
    """SQLAlchemy "connect" listener: a run's own event-log file is written without fsync."""
    if not isinstance(connection, sqlite3.Connection):
        return
    cursor = connection.cursor()
    try:
        path = cursor.execute("PRAGMA database_list").fetchone()[2]
        if RUN_EVENT_LOG.search(path or ""):
            cursor.execute("PRAGMA synchronous=OFF")
    finally:
        cursor.close()


def write_run_event_logs_unsynced() -> None:
    """Let SQLite skip fsync on the files of single runs' event logs, in this process; idempotent.

    NOTE: Dagster's SQLite instance opens a new connection for every event and commits it
    alone, and a run's event-log file is new and in rollback-journal mode while its tables are
    made: a `stopcheck run` of the sample made 10,257 fsyncs, 2,919 with this, and its monthly
    runs end 2.5–3 s sooner (docs/performance.md). Only those per-run files are left to the
    operating system's writeback: a power failure or a crash of the machine during or just
    after a run can lose or damage that run's event log, never the warehouse nor the
    instance's index, run list and schedules (``index.db``, ``runs.db``, ``schedules.db``),
    which keep SQLite's full synchronisation. A PostgreSQL instance (docs/production) is
    untouched.
    """
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    if not event.contains(Engine, "connect", _unsynced_run_event_log):
        event.listen(Engine, "connect", _unsynced_run_event_log)


_ENGINES = "_stopcheck_engines"
"""Attribute of a Dagster SQLite storage holding its kept engines, by URL (`keep_connections`)."""
_TABLES = "_stopcheck_tables"
"""Attribute of a Dagster event-log storage holding the tables found to exist (`_known_table`)."""
_ENGINES_LOCK = threading.Lock()
_KEPT_ENGINES: weakref.WeakSet = weakref.WeakSet()
"""Every engine `keep_connections` made in this process: disposed when the process exits."""


def _kept_engine(storage, url: str, connect_args: dict):
    """The engine of one SQLite file of a Dagster `storage`, made on first use and kept: its pool
    keeps one connection to the file open between uses (more, closed on return, if two are
    wanted at once)."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import QueuePool

    with _ENGINES_LOCK:
        engines = storage.__dict__.setdefault(_ENGINES, {})
        engine = engines.get(url)
        if engine is None:
            # NOTE: the pool hands the connection to one thread at a time, and SQLite serialises
            # its use; Python's check that a connection stays in its first thread does not
            # know that.
            engine = create_engine(url, poolclass=QueuePool, pool_size=1, max_overflow=-1,
                                   connect_args={**connect_args, "check_same_thread": False})
            engines[url] = engine
            _KEPT_ENGINES.add(engine)
        return engine


DAGSTERS_OWN: dict[str, Callable] = {}
"""The methods `keep_connections` replaced, by class and method name (tests show they are still
needed)."""
_RUNS_HERE: set[str] = set()
"""Ids of the runs `execute` is running in this process: their event-log files are kept open."""


def _kept_event_log_connection(self, shard: str):
    """`SqliteEventLogStorage._connect` of Dagster 1.13 with the engine kept for the index and
    for the event-log files of runs in progress here; Dagster's own for any other file (reading
    a past run's events)."""
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME

    if shard == INDEX_SHARD_NAME or shard in _RUNS_HERE:
        return _kept_shard_connection(self, shard)
    return DAGSTERS_OWN["SqliteEventLogStorage._connect"](self, shard)


@contextmanager
def _kept_shard_connection(self, shard: str):
    from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS

    with self._db_lock:
        engine = _kept_engine(self, self.conn_string_for_shard(shard),
                              {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        with engine.connect() as connection, connection.begin():
            yield connection


def _known_table(self, table_name: str) -> bool:
    """`SqliteEventLogStorage.has_table` of Dagster 1.13, asked once per table that exists: a
    table is never dropped while a run writes (migrations are `dagster instance migrate`)."""
    known = self.__dict__.setdefault(_TABLES, set())
    if table_name not in known and DAGSTERS_OWN["SqliteEventLogStorage.has_table"](
            self, table_name):
        known.add(table_name)
    return table_name in known


@contextmanager
def _kept_run_storage_connection(self):
    """`SqliteRunStorage.connect` of Dagster 1.13 with the file's engine kept."""
    with _kept_engine(self, self._conn_string, {}).connect() as connection, connection.begin():
        yield connection


def _dispose_kept_engines() -> None:
    for engine in list(_KEPT_ENGINES):
        engine.dispose()


def keep_connections() -> None:
    """Keep a connection open to the SQLite files of a local Dagster instance that runs write
    to (the run list, the event-log index, the event log of each run in progress), in this
    process; idempotent.

    NOTE: Dagster 1.13's SQLite storages make a new SQLAlchemy engine, open a connection, and
    close and dispose both for every event and every query (`SqliteEventLogStorage._connect`,
    `SqliteRunStorage.connect`), and closing a file's last connection checkpoints its
    write-ahead log: about 360 times per monthly run. It also asks the index whether a table
    exists, with an engine of its own, at every asset and check event
    (`SqliteEventLogStorage.has_table`): here once per table. Kept, the sample's months end 2–3 s
    sooner (docs/performance.md). Each use is still one transaction, committed as before. A
    run's event-log file is closed when its run ends (`release_run_connection`); the index and
    the run list when the process exits. A shim on the pinned Dagster, installed only by
    `execute` (the webserver and the daemon keep Dagster's own), with tests that fail when
    Dagster renames what it replaces or starts keeping connections itself
    (tests/unit/test_runs.py).
    """
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
    from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage

    replaced = ((SqliteEventLogStorage, "_connect", _kept_event_log_connection),
                (SqliteEventLogStorage, "has_table", _known_table),
                (SqliteRunStorage, "connect", _kept_run_storage_connection))
    for cls, name, _kept in replaced:
        if name not in cls.__dict__:
            raise RuntimeError(f"Dagster's {cls.__name__}.{name} is gone: pipelines/runs.py "
                               "keep_connections no longer fits this Dagster version")
    installed = False
    for cls, name, kept in replaced:
        if cls.__dict__[name] is not kept:
            DAGSTERS_OWN[f"{cls.__name__}.{name}"] = cls.__dict__[name]
            setattr(cls, name, kept)
            installed = True
    if installed:
        atexit.register(_dispose_kept_engines)


def release_run_connection(instance, run_id: str) -> None:
    """Close the kept connection to the event-log file of a finished run (`keep_connections`):
    its write-ahead log is checkpointed into the file, and no file stays open per past run."""
    storage = instance.event_log_storage
    engines = storage.__dict__.get(_ENGINES)
    if not engines:  # NOTE: not a SQLite event log, or not shimmed
        return
    with _ENGINES_LOCK:
        engine = engines.pop(storage.conn_string_for_shard(run_id), None)
    if engine is not None:
        engine.dispose()


def execute(defs, instance, job_name: str, *, partition: str | None = None,
            config: dict | None = None, asset_selection: list | None = None,
            report: Report | None = None) -> list[StepFailure]:
    """Run one job in this process on `instance`; return its failed steps (empty: success)."""
    write_run_event_logs_unsynced()
    keep_connections()
    job = defs.resolve_job_def(job_name)
    run_id = str(uuid.uuid4())
    if report is not None:
        instance.add_event_listener(run_id, step_reporter(report))
    _RUNS_HERE.add(run_id)
    try:
        result = job.execute_in_process(
            instance=instance, partition_key=partition, run_config={**QUIET, **(config or {})},
            raise_on_error=False, run_id=run_id, asset_selection=asset_selection)
    finally:
        _RUNS_HERE.discard(run_id)
        release_run_connection(instance, run_id)
    failures = step_failures(result, job_name, partition)
    # NOTE: the run result holds every step's frames in reference cycles that Python rarely
    # collects; without this each month's frames stay resident (docs/performance.md, fix 1).
    del result
    gc.collect()
    # NOTE: what survives a collection is long-lived (modules, definitions, GX, altair:
    # 400,000 objects, 0.5 s to walk): frozen, later collections walk only what later runs
    # made (docs/performance.md). The caller thaws them when its runs end (gc.unfreeze).
    gc.freeze()
    return failures


def choose_month_processes(month_rows: Sequence[int | None], processors: int) -> int:
    """How many processes run the monthly job side by side, given the query rows of each month
    to load (None: not known) and the processors this process may use: `MONTH_PROCESSES` when
    there are two processors or more, at least `PARALLEL_FROM_MONTHS` months, at least
    `PARALLEL_FROM_ROWS` rows in all and no month over `MONTH_ROWS_MAX` (or of unknown size);
    else one."""
    if (processors < 2 or len(month_rows) < PARALLEL_FROM_MONTHS
            or any(rows is None for rows in month_rows)):
        return 1
    if max(month_rows) > MONTH_ROWS_MAX or sum(month_rows) < PARALLEL_FROM_ROWS:
        return 1
    return MONTH_PROCESSES


def count_month_rows(landing: Path, month: str) -> int | None:
    """Person and plate query rows of one month of the landing zone (None when a file cannot be
    read: the run then says why)."""
    from assets.frames import count_rows, month_file
    from assets.schema import QUERY_TYPES

    total = 0
    for query_type in QUERY_TYPES:
        path = month_file(landing, query_type, month)
        if path.exists():
            try:
                total += count_rows(path)
            except Exception:  # noqa: BLE001 - the monthly run reports an unreadable file
                return None
    return total


def remove_month(defs, warehouse: Path, month: str) -> None:
    """Remove every monthly file of a failed month: no partial output for that partition, and no
    output of an earlier run that the current landing zone no longer backs."""
    for key in defs.resolve_job_def("monthly_job").asset_layer.executable_asset_keys:
        warehouse.joinpath(*key.path, f"{month}.parquet").unlink(missing_ok=True)


@dataclass(frozen=True)
class MonthWorkers:
    """Worker processes that run months beside the main process (`month_workers`)."""

    pool: ProcessPoolExecutor
    messages: Any
    """The workers' step news, (stage, inc, message), for the main process to pass on."""
    count: int


@contextmanager
def month_workers(processes: int, instance, definitions_args: tuple[str, str, str]
                  ) -> Iterator[MonthWorkers | None]:
    """`processes` − 1 worker processes for `run_months` (None for one process), started at
    once and shut down on leaving (a worker finishes the month it runs, or its start).

    The workers are spawned (not forked: polars' and DuckDB's thread pools do not survive a
    fork); each builds the definitions from `definitions_args` (landing, warehouse, themes file)
    on the same Dagster instance (`instance.get_ref()`: not an ephemeral instance) and imports
    GX before it takes a month.
    """
    if processes < 2:
        yield None
        return
    if instance.is_ephemeral:
        raise ValueError("months side by side need a Dagster instance with storage: an "
                         "ephemeral instance lives in one process")
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    pool = ProcessPoolExecutor(processes - 1, mp_context=context, initializer=_start_worker,
                               initargs=(*definitions_args, instance.get_ref(), messages))
    try:
        # NOTE: a task starts a worker now, not at its first month: its start (imports of
        # Dagster, the definitions and GX, about 10 s of a processor on the sample) overlaps the
        # main process's reference tables on the other processor.
        for _ in range(processes - 1):
            pool.submit(_started)
        yield MonthWorkers(pool, messages, processes - 1)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run_months(defs, instance, months: Sequence[str], warehouse: Path, *,
               workers: MonthWorkers | None, progress: Collector) -> list[StepFailure]:
    """Run the monthly job once per month, in this process and in each of the `workers`
    (`month_workers`), each taking the next month as it finishes one; return the failures in
    month order. A failed month's files are removed (`remove_month`); the other months go on.

    A worker that dies (killed, out of memory) or cannot start fails its month with a message
    saying so; the main process takes the months left.
    """
    pending = deque(months)
    outcomes: dict[str, list[StepFailure]] = {}
    submitted: dict[str, Future] = {}
    lock = threading.Lock()

    def take() -> str | None:
        with lock:
            return pending.popleft() if pending else None

    def report_for(month: str) -> Report:
        return lambda inc, message: progress.update("steps", inc=inc, message=message,
                                                    stage=f"month {month}")

    def finish(month: str, failures: list[StepFailure], began: float) -> None:
        if failures:
            remove_month(defs, warehouse, month)
        outcome = "FAILED" if failures else "ok"
        with lock:
            outcomes[month] = failures
            progress.update("months", total=len(months),
                            message=f"{month} {outcome} in {time.monotonic() - began:.1f} s")

    progress.update("months", inc=0, total=len(months))
    feeders: list[threading.Thread] = []
    if workers is not None:

        def feed() -> None:
            # NOTE: a thread per worker: it hands the worker its next month and passes on the
            # worker's step news while it waits (the worker cannot reach `progress`).
            while (month := take()) is not None:
                began = time.monotonic()
                future = submit(workers, _run_month_in_worker, month)
                with lock:
                    submitted[month] = future
                follow(future, workers.messages, progress)
                try:
                    failures = future.result()
                except Exception as error:  # noqa: BLE001 - the worker died: its month failed
                    failures = [StepFailure(
                        "monthly_job", "monthly_job", month,
                        f"the worker process running this month ended without a result "
                        f"({type(error).__name__}: killed, out of memory, or it could not "
                        "start); the months left run in the main process. Run this month "
                        f"again: stopcheck run --backfill {month} {month}")]
                    finish(month, failures, began)
                    return
                finish(month, failures, began)

        feeders = [threading.Thread(target=feed, name=f"months-{i}", daemon=True)
                   for i in range(workers.count)]
        for feeder in feeders:
            feeder.start()

    def run_here() -> None:
        while (month := take()) is not None:
            began = time.monotonic()
            failures = execute(defs, instance, "monthly_job", partition=month,
                               report=report_for(month))
            finish(month, failures, began)

    try:
        run_here()
        for feeder in feeders:
            feeder.join()
        run_here()  # the months a dead worker left
    finally:
        # NOTE: on an interruption the worker finishes its month (`month_workers` waits for
        # it); its feeder takes no other.
        with lock:
            pending.clear()
    # NOTE: a month with no outcome (its feeder thread stopped on an error) is a failure, never
    # a month silently left out of the statistics.
    unfinished = {month: [StepFailure("monthly_job", "monthly_job", month,
                                      "this month's run gave no outcome (the thread that "
                                      "followed it stopped on an error); its files are removed. "
                                      f"Run it again: stopcheck run --backfill {month} {month}")]
                  for month in months if month not in outcomes}
    # NOTE: a month whose feeder stopped may still run in its worker: its files are removed once
    # the worker is done with it, or the worker would write them after the removal and leave a
    # month reported as failed in the warehouse.
    wait([submitted[month] for month in unfinished if month in submitted])
    for month in unfinished:
        remove_month(defs, warehouse, month)
    return [failure for month in months
            for failure in outcomes.get(month, unfinished.get(month, []))]


def submit(workers: MonthWorkers, function: Callable, *args, **kwargs) -> Future:
    """`function` handed to the worker; a worker that could not start gives a future that
    holds its `BrokenProcessPool`, as one that dies later does."""
    try:
        return workers.pool.submit(function, *args, **kwargs)
    except BrokenProcessPool as error:
        failed: Future = Future()
        failed.set_exception(error)
        return failed


def follow(future: Future, messages, progress: Collector) -> None:
    """Pass a worker's step news on to `progress` until its task (`future`) is done."""
    while True:
        try:
            stage, inc, message = messages.get(timeout=0.2)
            progress.update("steps", inc=inc, message=message, stage=stage)
        except queue.Empty:
            if future.done():
                break


STATISTICS_BESIDE = ("out_thematic_disproportionality",)
"""Statistics that a month worker computes in a run of its own while the main process computes
the others (`run_statistics`): the themes, about as long as the other statistics together."""

STATISTICS_BESIDE_ROWS_MAX = 2_000_000
"""The most query rows (person and plate, all months) whose statistics run in two processes.
On small years the statistics' many small steps leave a processor idle: the built-in sample
(0.5M rows) ended 1–6 s sooner in five alternated pairs (its statistics 14 → 11–12 s), a year
of 1.2M person queries (2.0M rows) 2–4 s (statistics and publication 31.4 → 27.9 and 29.4 s,
peak 1.6 → 2.7 GB). At 5M person queries (8.3M rows) their threads already keep
both busy: 37.8 → 36.4 s, within the machine's noise, for 1.2 GB more (2.9 → 4.1 GB); the 50M
year would not fit in memory (docs/performance.md)."""


def statistics_beside(month_rows: Sequence[int | None]) -> bool:
    """Whether a month worker, where there is one, computes `STATISTICS_BESIDE`
    (`run_statistics`): when the query rows of every month of the landing zone (None: not known)
    add up to at most `STATISTICS_BESIDE_ROWS_MAX`."""
    return (all(rows is not None for rows in month_rows)
            and sum(month_rows) <= STATISTICS_BESIDE_ROWS_MAX)


def run_statistics(defs, instance, *, workers: MonthWorkers | None, publish: bool,
                   progress: Collector) -> list[StepFailure]:
    """The statistics job over the materialised months: every out_ table, then publication
    (left out when `publish` is False); return the failures.

    Without `workers`, one run. With them, `STATISTICS_BESIDE` is computed in a run of the
    worker while this process runs the other tables, and publication follows in a run of its
    own once both succeeded: the same tables and files, in two or three runs of the job. A
    worker that dies leaves its tables to this process.
    """
    from dagster import AssetKey

    keys = sorted(defs.resolve_job_def("statistics_job").asset_layer.executable_asset_keys,
                  key=lambda key: key.to_user_string())
    tables = [key for key in keys if key != AssetKey("publication")]

    def run(selection: list | None) -> list[StepFailure]:
        return execute(defs, instance, "statistics_job", asset_selection=selection,
                       report=lambda inc, message: progress.update("steps", inc=inc,
                                                                   message=message))

    if workers is None:
        return run(None if publish else tables)
    there = [key for key in tables if key.to_user_string() in STATISTICS_BESIDE]
    here = [key for key in tables if key not in there]
    task = submit(workers, _run_in_worker, "statistics_job", progress.stage,
                  asset_selection=there)
    with ThreadPoolExecutor(1) as follower:
        # NOTE: a thread passes on the worker's step news while this one runs its own tables.
        followed = follower.submit(follow, task, workers.messages, progress)
        failures = run(here)
        wait([task])
        if task.exception() is None:
            failures += task.result()
        else:
            progress.update("steps", message="the worker process ended without a result "
                            "(killed or out of memory): its tables run in this process")
            failures += run(there)
        followed.result()  # NOTE: raises what passing on the news raised
    if failures or not publish:
        return failures
    return run([AssetKey("publication")])


_WORKER: dict[str, Any] = {}
"""A worker process's definitions, instance and message queue (`_start_worker`)."""


def _start_worker(landing: str, warehouse: str, themes_file: str, instance_ref, messages) -> None:
    import warnings

    # NOTE: as in `stopcheck`'s main, before pipelines.definitions builds its checks: the preview
    # warning of partitioned asset checks says nothing to an operator.
    warnings.filterwarnings("ignore", message=".*is currently in preview.*")
    from dagster import DagsterInstance

    from pipelines.definitions import build_definitions
    from pipelines.gx import start_gx

    _WORKER.update(defs=build_definitions(landing, warehouse, themes_file),
                   instance=DagsterInstance.from_ref(instance_ref), messages=messages)
    start_gx()


def _started() -> None:
    """The first task of a worker: it starts the process (`_start_worker` runs first)."""


def _run_in_worker(job_name: str, stage: str, **run_args) -> list[StepFailure]:
    """`execute` of `job_name` in a worker (`partition`, `asset_selection`), its step news sent
    to the main process under `stage`."""
    messages = _WORKER["messages"]
    return execute(_WORKER["defs"], _WORKER["instance"], job_name, **run_args,
                   report=lambda inc, message: messages.put((stage, inc, message)))


def _run_month_in_worker(month: str) -> list[StepFailure]:
    return _run_in_worker("monthly_job", f"month {month}", partition=month)
