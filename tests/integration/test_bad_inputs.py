"""Every bad input is quarantined with its reason or refused (DESIGN.md §6, issue 3).

Row-level damage: one landing zone holds every rule's damage and one run checks them all (a run
costs seconds). Each damaged row ends up in core_quarantine with exactly its reason (or stays
valid at a local-midnight edge), counts in = counts out per month and type, and every other row
is the same as in the clean run. The same landing zone mixes formats, so the same run shows
that CSV and Parquet behave alike: the damaged person month is CSV in Amsterdam clock time with
+01:00 offsets, the clean plate month CSV in UTC with every field quoted (a null as ""). The
damaged plate month carries an extra column, which only warns. A third month with no rows fails
alone, leaving the two others materialised.

File-level damage: every damage × format × query type is checked at the reader (message names
the file, the column and the count); a representative set also runs through the pipeline, in
one run of one landing zone that gives each damage a month of its own next to a clean month:
each damaged month's partition fails naming asset and partition, nothing of that asset and
partition is written, no core table of that month either, the clean month is complete and
statistics are skipped. `stopcheck run` exits 1 and says what failed.

No value of a damaged row reaches the Dagster event log (tests/integration/
test_privacy_end_to_end.py covers refused identifiers).
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from assets import frames
from tests import corpus

MONTH, OTHER = "2025-02", "2025-01"
"""The damaged month and the untouched one (the earlier: cross-month duplicates point at it)."""
EMPTY = "2025-03"
"""A month added to the row-level landing zone with no rows: it must fail alone (and it keeps
the statistics job, which costs seconds and is not what these tests are about, out of the run)."""
QUERY_TYPES = ("person", "plate")
CORE_TABLES = ("core_person_queries", "core_plate_queries", "core_quarantine")
MONTHLY_TABLES = ("raw_person_queries", "raw_plate_queries", *CORE_TABLES)
QUARANTINE_COMPARED = ("query_type", "month", "reason", "query_id", "queried_at", "team_code",
                       "query_reason", "buurt_code", "hit")


@dataclass(frozen=True)
class Run:
    landing: Path
    warehouse: Path
    failures: list
    echoed: list[str]
    instance: dg.DagsterInstance


def run_on(landing: Path, warehouse: Path) -> Run:
    """`stopcheck run`'s code path into a fresh warehouse and ephemeral instance."""
    from pipelines.cli import run_pipeline
    from pipelines.progress import LogCollector

    instance = dg.DagsterInstance.ephemeral()
    echoed: list[str] = []
    failures = run_pipeline(landing, warehouse, instance, progress=LogCollector(echoed.append))
    return Run(landing, warehouse, failures, echoed, instance)


def table(warehouse: Path, name: str, month: str) -> pl.DataFrame:
    return pl.read_parquet(warehouse / name / f"{month}.parquet")


def core_of(warehouse: Path, query_type: str, month: str) -> pl.DataFrame:
    return table(warehouse, f"core_{query_type}_queries", month)


def logged_events(instance: dg.DagsterInstance) -> list:
    return [event for run in instance.get_runs() for event in instance.all_logs(run.run_id)]


# --------------------------------------------------------------------------- row-level


@dataclass(frozen=True)
class RowRun:
    run: Run
    damages: list[corpus.RowDamage]
    damaged: dict[str, pl.DataFrame]
    """The typed damaged month per query type, as written before any conversion to CSV."""


FORMATS = {("person", OTHER): "parquet", ("person", MONTH): "csv",
           ("plate", OTHER): "csv", ("plate", MONTH): "parquet"}
"""Format of each monthly file of the row-level landing zone."""


@pytest.fixture(scope="module")
def row_run(small_landing, tmp_path_factory) -> RowRun:
    """Every row-level damage of both query types in MONTH of one copied landing zone, with
    the formats of FORMATS, an extra column in the plate file of MONTH and an EMPTY month."""
    landing = corpus.copy_landing(small_landing, tmp_path_factory.mktemp("rows") / "landing")
    damages = [d for query_type in QUERY_TYPES
               for d in corpus.damage_rows(landing, query_type, MONTH)]
    damaged = {query_type: corpus.load_month(landing, query_type, MONTH)
               for query_type in QUERY_TYPES}
    corpus.to_csv(landing, "person", MONTH, offsets="local")
    corpus.to_csv(landing, "plate", OTHER, offsets="utc", quote_all=True)
    corpus.add_extra_column(landing, "plate", MONTH)
    for query_type in QUERY_TYPES:
        source = corpus.month_path(landing, query_type, MONTH)
        shutil.copyfile(source, source.with_stem(EMPTY))
        corpus.empty_month(landing, query_type, EMPTY)
    return RowRun(run_on(landing, tmp_path_factory.mktemp("rows_warehouse")), damages, damaged)


ROW_CASES = [(query_type, name) for name, rule in corpus.ROW_DAMAGES.items()
             for query_type in rule.query_types]


def damaged_file_rows(row_run: RowRun, query_type: str) -> pl.DataFrame:
    """The damaged landing file of MONTH with its row number and each damage's expectation."""
    manifest = pl.DataFrame(
        [{"row": d.row, "damage": d.name, "expected_reason": d.reason, "original_id": d.original_id}
         for d in row_run.damages if d.query_type == query_type],
        schema={"row": pl.UInt32, "damage": pl.String, "expected_reason": pl.String,
                "original_id": pl.String},
    )
    rows = row_run.damaged[query_type].with_row_index("row")
    return rows.join(manifest, on="row", how="left")


def test_row_damage_run_fails_only_the_empty_month(row_run):
    assert sorted((f.step, f.partition) for f in row_run.run.failures) == [
        ("raw_person_queries", EMPTY), ("raw_plate_queries", EMPTY)]
    assert all("empty month" in f.message for f in row_run.run.failures)
    for name in MONTHLY_TABLES:
        assert not (row_run.run.warehouse / name / f"{EMPTY}.parquet").exists()
        assert (row_run.run.warehouse / name / f"{MONTH}.parquet").is_file()
    assert len(row_run.damages) == len(ROW_CASES)
    for (query_type, month), fmt in FORMATS.items():
        assert corpus.month_path(row_run.run.landing, query_type, month).suffix == f".{fmt}"


@pytest.mark.parametrize(("query_type", "name"), ROW_CASES)
def test_damaged_row_gets_exactly_its_reason(row_run, query_type, name):
    damage = next(d for d in row_run.damages if (d.query_type, d.name) == (query_type, name))
    row = damaged_file_rows(row_run, query_type).filter(pl.col("row") == damage.row).row(
        0, named=True)
    same_row = (pl.col("query_id").eq_missing(row["query_id"])
                & pl.col("queried_at").eq_missing(row["queried_at"]))
    warehouse = row_run.run.warehouse
    quarantined = table(warehouse, "core_quarantine", MONTH).filter(
        same_row, pl.col("query_type") == query_type)
    core = core_of(warehouse, query_type, MONTH).filter(same_row)
    if damage.reason is None:
        assert quarantined.height == 0
        assert core.height == 1
    else:
        assert quarantined["reason"].to_list() == [damage.reason]
        assert core.height == 0


def test_quarantine_holds_exactly_the_damaged_rows(row_run, pipeline_run):
    expected = [
        # NOTE: rows the clean sample itself quarantines (none expected) stay quarantined.
        table(pipeline_run.warehouse, "core_quarantine", MONTH).select(QUARANTINE_COMPARED)
    ]
    for query_type in QUERY_TYPES:
        rows = damaged_file_rows(row_run, query_type).filter(
            pl.col("expected_reason").is_not_null())
        expected.append(rows.select(
            query_type=pl.lit(query_type), month=pl.lit(MONTH), reason="expected_reason",
            query_id="query_id", queried_at="queried_at", team_code="team_code",
            query_reason="query_reason", buurt_code="buurt_code", hit="hit"))
    expected = pl.concat(expected).sort(QUARANTINE_COMPARED, nulls_last=True)
    actual = table(row_run.run.warehouse, "core_quarantine", MONTH)
    for query_type in QUERY_TYPES:
        assert set(actual.filter(pl.col("query_type") == query_type)["source_file"]) == {
            f"{MONTH}.{FORMATS[query_type, MONTH]}"}
    actual = actual.select(QUARANTINE_COMPARED).sort(QUARANTINE_COMPARED, nulls_last=True)
    assert_frame_equal(actual, expected)


@pytest.mark.parametrize("month", [OTHER, MONTH])
@pytest.mark.parametrize("query_type", QUERY_TYPES)
def test_counts_in_equal_counts_out(row_run, query_type, month):
    warehouse = row_run.run.warehouse
    rows_received = corpus.load_month(row_run.run.landing, query_type, month).height
    assert rows_received > 1000
    rows_valid = core_of(warehouse, query_type, month).height
    rows_quarantined = table(warehouse, "core_quarantine", month).filter(
        pl.col("query_type") == query_type).height
    assert rows_received == rows_quarantined + rows_valid
    if month == MONTH:
        assert rows_quarantined >= sum(
            d.reason is not None for d in row_run.damages if d.query_type == query_type)


def test_rows_accounted_for_check_passed_every_month(row_run):
    evaluations = [
        event.dagster_event.event_specific_data
        for event in logged_events(row_run.run.instance)
        if event.dagster_event is not None
        and event.dagster_event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    accounted = [e for e in evaluations if e.check_name == "rows_accounted_for"]
    assert len(accounted) == 2
    assert all(e.passed for e in accounted)


@pytest.mark.parametrize("query_type", QUERY_TYPES)
def test_other_rows_of_the_month_unaffected(row_run, pipeline_run, query_type):
    """Every row not damaged is exactly as in the clean run; damaged rows are not in core."""
    touched = {d.original_id for d in row_run.damages if d.query_type == query_type}
    # NOTE: an id a duplicate copied belongs to an untouched row, which is compared too.
    untouched = ~pl.col("query_id").is_in(list(touched))
    actual = core_of(row_run.run.warehouse, query_type, MONTH)
    clean = core_of(pipeline_run.warehouse, query_type, MONTH)
    assert_frame_equal(actual.filter(untouched).sort("query_id"),
                       clean.filter(untouched).sort("query_id"))
    quarantined = sum(d.reason is not None for d in row_run.damages if d.query_type == query_type)
    assert actual.height == clean.height - quarantined


@pytest.mark.parametrize("name", MONTHLY_TABLES)
def test_other_month_unaffected_whatever_its_format(row_run, pipeline_run, name):
    """OTHER is clean: each table equals the all-Parquet run's, bar the quarantine's
    source_file (plate is CSV)."""
    def comparable(frame: pl.DataFrame) -> pl.DataFrame:
        frame = frame.drop("source_file", strict=False)
        return frame.sort(frame.columns, nulls_last=True)

    csv_plate = table(row_run.run.warehouse, name, OTHER)
    assert_frame_equal(comparable(csv_plate),
                       comparable(table(pipeline_run.warehouse, name, OTHER)))
    if name == "raw_plate_queries":
        # NOTE: a CSV month's rows are written typed; they are not the delivered bytes.
        written = pl.read_parquet_metadata(row_run.run.warehouse / name / f"{OTHER}.parquet")
        assert "stopcheck:code_version" in written


def test_extra_column_warns_in_the_event_log(row_run):
    path = corpus.month_path(row_run.run.landing, "plate", MONTH)
    warnings = [e.user_message for e in logged_events(row_run.run.instance)
                if e.level == logging.WARNING and corpus.EXTRA_COLUMN in e.user_message]
    assert len(warnings) == 1
    assert str(path) in warnings[0]
    assert corpus.EXTRA_COLUMN not in table(row_run.run.warehouse, "raw_plate_queries", MONTH)


def test_no_value_of_a_damaged_row_in_the_event_log(row_run):
    """Quarantine, checks and logs speak in counts: no id or pseudonym of a damaged row (nor the
    bad values written into it) reaches the Dagster event log."""
    logged = "\n".join(dg.serialize_value(e) for e in logged_events(row_run.run.instance))
    assert "rows_accounted_for" in logged and corpus.EXTRA_COLUMN in logged  # searchable
    needles = set()
    for query_type in QUERY_TYPES:
        rows = damaged_file_rows(row_run, query_type).filter(pl.col("damage").is_not_null())
        for column in ("query_id", "original_id", *corpus.PSEUDONYM_COLUMNS[query_type]):
            needles |= set(rows[column].drop_nulls().to_list())
    assert len(needles) > 50
    assert sorted(n for n in needles if n in logged) == []


def test_kept_edge_rows_keep_their_instant(row_run):
    """00:30 local on the 1st is 23:30 UTC the day before: kept, with the instant unchanged."""
    start, _ = corpus.local_month_bounds(MONTH)
    for query_type in QUERY_TYPES:
        damage = next(d for d in row_run.damages if d.query_type == query_type
                      and d.name == "queried_after_local_start_before_utc_start")
        row = core_of(row_run.run.warehouse, query_type, MONTH).filter(
            pl.col("query_id") == damage.original_id)
        assert row["queried_at"].to_list() == [start.replace(minute=30)]
        assert row["queried_at"].dt.convert_time_zone("UTC").dt.month().to_list() == [1]


# --------------------------------------------------------------------------- file-level: reader


READER_CASES = [(name, fmt, query_type) for name, damage in corpus.FILE_DAMAGES.items()
                for fmt in damage.formats for query_type in QUERY_TYPES]


def damaged_landing(source: Path, target: Path, name: str, fmt: str, query_type: str
                    ) -> tuple[Path, dict]:
    """A copy of `source` with MONTH of `query_type` in format `fmt`, damaged by `name`."""
    landing = corpus.copy_landing(source, target)
    if fmt == "csv":
        corpus.to_csv(landing, query_type, MONTH)
    return landing, corpus.FILE_DAMAGES[name].apply(landing, query_type, MONTH)


def month_cells(landing: Path, query_type: str) -> set[str]:
    """Every text of MONTH's clean rows that would identify a row: ids, pseudonyms, instants."""
    month = corpus.load_month(landing, query_type, MONTH)
    cells = {v for c in month.columns if month.schema[c] == pl.String
             for v in month[c].drop_nulls().unique() if len(v) >= 6}
    return cells | {t.isoformat() for t in month["queried_at"].drop_nulls()}


def check_message(message: str, path: Path, name: str, info: dict,
                  cells: set[str] = frozenset()) -> None:
    """The message names the file, the column and the count, says what went wrong, and holds
    none of `cells` (the values of the month's rows)."""
    assert path.name in message and str(path.parent) in message
    if "column" in info:
        assert info["column"] in message
    if "count" in info:
        assert f"{info['count']} " in message or f"({info['count']} " in message
        assert re.search(rf"(?<![\d.]){info['count']} ", message), message  # not "11" for 1
    assert any(word in message for word in corpus.FILE_DAMAGES[name].expect), message
    leaked = sorted(c for c in cells if c in message)
    assert leaked == [], f"{len(leaked)} row value(s) in the message"


@pytest.mark.parametrize(("name", "fmt", "query_type"), READER_CASES)
def test_reader_refuses_or_warns(small_landing, tmp_path, name, fmt, query_type):
    landing, info = damaged_landing(small_landing, tmp_path / "landing", name, fmt, query_type)
    path = corpus.month_path(landing, query_type, MONTH)
    if corpus.FILE_DAMAGES[name].is_warning:
        result = frames.read_query_month(landing, query_type, MONTH)
        assert len(result.warnings) == 1
        check_message(result.warnings[0], path, name, info, month_cells(small_landing, query_type))
        assert corpus.EXTRA_COLUMN not in result.frame.columns
        clean = frames.read_query_month(small_landing, query_type, MONTH)
        assert_frame_equal(result.frame, clean.frame)
        # NOTE: a file with more than the contract's columns is never copied to the warehouse.
        assert result.delivered is None and clean.delivered is not None
        return
    with pytest.raises(frames.InputError) as raised:
        frames.read_query_month(landing, query_type, MONTH)
    check_message(str(raised.value), path, name, info, month_cells(small_landing, query_type))


# --------------------------------------------------------------------------- file-level: pipeline


PIPELINE_CASES = {
    "2025-02": ("missing_file", "csv", "plate"),
    "2025-03": ("truncated", "parquet", "person"),
    "2025-04": ("hit_as_yes_no", "parquet", "person"),
    "2025-05": ("empty_month", "parquet", "plate"),
    "2025-06": ("both_formats", "parquet", "person"),
    "2025-07": ("timestamps_without_offset", "csv", "person"),
}
"""A representative damage per month of one landing zone (a run costs seconds; the reader
tests cover every case). OTHER stays clean."""


@dataclass(frozen=True)
class FileRun:
    run: Run
    info: dict[str, dict]
    """What each month's damage returned (column, count), by month."""


@pytest.fixture(scope="module")
def file_run(small_landing, tmp_path_factory) -> FileRun:
    """One landing zone, one run: OTHER clean, each month of PIPELINE_CASES damaged its way."""
    landing = corpus.copy_landing(small_landing, tmp_path_factory.mktemp("files") / "landing")
    for month in PIPELINE_CASES:
        if month != MONTH:
            corpus.copy_month(landing, MONTH, month)
    info = {}
    for month, (name, fmt, query_type) in PIPELINE_CASES.items():
        if fmt == "csv":
            corpus.to_csv(landing, query_type, month)
        info[month] = corpus.FILE_DAMAGES[name].apply(landing, query_type, month)
    return FileRun(run_on(landing, tmp_path_factory.mktemp("files_warehouse")), info)


def test_only_the_damaged_months_fail(file_run):
    run = file_run.run
    assert sorted((f.job, f.step, f.partition) for f in run.failures) == sorted(
        ("monthly_job", f"raw_{query_type}_queries", month)
        for month, (_, _, query_type) in PIPELINE_CASES.items())
    for name in MONTHLY_TABLES:
        assert (run.warehouse / name / f"{OTHER}.parquet").is_file()
    # one progress line per month, then no statistics: they need every month
    months = [line.split("] ", 1)[1] for line in run.echoed if line.endswith("months)")]
    assert [m.split(" in ")[0] for m in months] == [
        f"{month} {'FAILED' if month in PIPELINE_CASES else 'ok'}"
        for month in frames.list_months(run.landing)]
    assert "statistics_job" not in {r.job_name for r in run.instance.get_runs()}
    assert not list(run.warehouse.glob("out_*")) and not (run.warehouse / "publication").exists()


@pytest.mark.parametrize("month", list(PIPELINE_CASES))
def test_bad_file_fails_its_partition_naming_file_column_count(file_run, month):
    name, _, query_type = PIPELINE_CASES[month]
    run = file_run.run
    failures = [f for f in run.failures if f.partition == month]
    assert len(failures) == 1
    assert str(failures[0]).startswith(f"raw_{query_type}_queries [{month}]: ")
    check_message(failures[0].message, corpus.month_path(run.landing, query_type, month), name,
                  file_run.info[month])
    assert not (run.warehouse / f"raw_{query_type}_queries" / f"{month}.parquet").exists()
    for table_name in CORE_TABLES:
        assert not (run.warehouse / table_name / f"{month}.parquet").exists()


@pytest.mark.parametrize(("offsets", "quote_all"),
                         [("local", False), ("utc", False), ("polars", False), ("local", True)])
@pytest.mark.parametrize("query_type", QUERY_TYPES)
def test_csv_reads_as_the_parquet_it_was_written_from(small_landing, tmp_path, query_type,
                                                      offsets, quote_all):
    landing = corpus.copy_landing(small_landing, tmp_path / "landing")
    corpus.to_csv(landing, query_type, MONTH, offsets=offsets, quote_all=quote_all)
    csv = frames.read_query_month(landing, query_type, MONTH)
    parquet = frames.read_query_month(small_landing, query_type, MONTH)
    assert csv.warnings == ()
    assert csv.delivered is None
    assert_frame_equal(csv.frame, parquet.frame)


def test_cross_month_duplicate_found_in_an_earlier_csv_month(small_landing, tmp_path):
    landing = corpus.copy_landing(small_landing, tmp_path / "landing")
    corpus.to_csv(landing, "person", OTHER)
    earlier = list(frames.iter_earlier_query_ids(landing, "person", MONTH))
    expected = pl.read_parquet(small_landing / "meos" / "person_queries" / f"{OTHER}.parquet")
    assert len(earlier) == 1  # one Series per earlier month
    assert earlier[0].sort().to_list() == expected["query_id"].sort().to_list()


# --------------------------------------------------------------------------- the console script


def test_stopcheck_run_exits_non_zero_naming_the_failure(small_landing, tmp_path, monkeypatch,
                                                         capsys):
    from pipelines import cli

    landing, _ = damaged_landing(small_landing, tmp_path / "landing", "garbage_bytes", "parquet",
                                 "person")
    warehouse = tmp_path / "warehouse"
    monkeypatch.setenv("STOPCHECK_LANDING_DIR", str(landing))
    monkeypatch.setenv("STOPCHECK_WAREHOUSE_DIR", str(warehouse))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))

    # NOTE: past the pre-flight check (tests/integration/test_cli.py): the run's own failure.
    assert cli.main(["run", "--skip-check"]) == 1

    out, err = capsys.readouterr()
    assert f"raw_person_queries [{MONTH}]" in err
    assert str(corpus.month_path(landing, "person", MONTH)) in err
    assert "FAILED (1 failed step(s))" in err
    assert f"] {MONTH} FAILED in " in out and f"] {OTHER} ok in " in out
    assert "statistics skipped" in err
    assert not list(warehouse.glob("out_*"))
    assert (warehouse / "core_person_queries" / f"{OTHER}.parquet").is_file()


def test_misnamed_month_file_fails_the_run(small_landing, tmp_path):
    import shutil

    import dagster as dg

    from pipelines.cli import run_pipeline

    landing = tmp_path / "landing"
    shutil.copytree(small_landing, landing)
    folder = landing / "meos" / "person_queries"
    shutil.copy(folder / "2025-01.parquet", folder / "2025-3.parquet")
    failures = run_pipeline(landing, tmp_path / "warehouse", dg.DagsterInstance.ephemeral())
    assert [f.message for f in failures] == [
        f"{folder / '2025-3.parquet'}: not a <YYYY-MM>.parquet or .csv export; rename or remove it"]
    assert not (tmp_path / "warehouse" / "out_team_disproportionality.parquet").exists()
