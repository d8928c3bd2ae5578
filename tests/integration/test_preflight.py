"""`stopcheck check` (assets/preflight.py): what a run would trip over, found in seconds, naming
file and column but never a value; `stopcheck run` stops before it starts on a blocking finding."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import polars as pl
import pytest

from assets.paths import SAMPLE_THEMES_PATH
from assets.preflight import Finding, check_landing_zone, format_report
from assets.themes import THEMES_PATH
from tests import corpus

MONTHS = ("2025-01", "2025-02")


def findings(report, *severities) -> list[Finding]:
    return [f for f in report.findings if not severities or f.severity in severities]


def test_the_sample_passes_with_its_months_and_what_the_guard_saw(small_landing):
    report = check_landing_zone(small_landing, SAMPLE_THEMES_PATH)
    assert not report.is_blocked
    assert [m.month for m in report.months] == list(MONTHS)
    for month in report.months:
        for query_type in ("person", "plate"):
            path = corpus.month_path(small_landing, query_type, month.month)
            assert month.rows[query_type] == pl.read_parquet(path).height
    assert [(f.severity, f.file, f.column) for f in report.findings] == [
        ("info", "cbs/population.parquet", "year"),
        ("warning", str(SAMPLE_THEMES_PATH), "months"),  # summer_2025: no month of Jan-Feb
        ("info", "meos", "-"),
    ]
    assert report.scanned_rows == report.query_rows > 0


def test_a_new_users_exports_with_a_broken_month(small_landing, tmp_path):
    landing = corpus.new_users_exports(small_landing, tmp_path / "landing")
    corpus.truncate_file(landing, "plate", "2025-02")
    began = time.monotonic()
    report = check_landing_zone(landing, THEMES_PATH)
    assert time.monotonic() - began < 30  # seconds, not the minutes of a run
    assert [(f.file, f.message) for f in findings(report, "blocking")] == [
        ("meos/plate_queries/2025-02.parquet", "unreadable or truncated (ArrowInvalid)")]
    # the shipped themes name no team: they fit any police unit's codes
    assert not [f for f in report.findings if f.column in ("teams", "team_code")]
    assert format_report(report).endswith("1 blocking, 1 warning, 2 info: a run would stop: "
                                          "fix the blocking findings first")


def test_themes_naming_teams_of_another_unit_name_the_theme_and_the_teams(small_landing,
                                                                          tmp_path):
    landing = corpus.new_users_exports(small_landing, tmp_path / "landing")
    report = check_landing_zone(landing, SAMPLE_THEMES_PATH)
    [finding] = findings(report, "blocking")
    known = sorted(set(pl.read_csv(landing / "reference" / "team_areas.csv")["team_code"]))
    assert finding == Finding(
        "blocking", str(SAMPLE_THEMES_PATH), "teams",
        "theme 'city_centre_teams': field 'teams': unknown team code(s) 'AMS-C1', 'AMS-C2'; "
        "known: " + ", ".join(f"'{code}'" for code in known))


def test_queries_of_teams_missing_from_team_areas(small_landing, tmp_path):
    landing = corpus.copy_landing(small_landing, tmp_path / "landing")
    frame = corpus.load_month(landing, "person", "2025-01")
    stray = frame.with_columns(
        pl.when(pl.col("team_code") == "AMS-C1").then(pl.lit("XX-1")).otherwise("team_code")
        .alias("team_code"))
    corpus.save_month(landing, "person", "2025-01", stray)
    rows = int((frame["team_code"] == "AMS-C1").sum())
    report = check_landing_zone(landing, SAMPLE_THEMES_PATH)
    [finding] = [f for f in findings(report, "warning") if f.column == "team_code"]
    assert finding.file == "meos/person_queries/2025-01.parquet"
    assert finding.message.startswith(f"{rows:,} of {frame.height:,} rows (")
    assert "XX-1" not in format_report(report)  # a value of the query file is never shown
    assert not report.is_blocked

    teams = landing / "reference" / "team_areas.csv"
    pl.read_csv(teams).with_columns(pl.lit("ELSEWHERE").alias("team_code")).write_csv(teams)
    blocked = check_landing_zone(landing, THEMES_PATH)
    assert ("blocking", "reference/team_areas.csv", "team_code") in [
        (f.severity, f.file, f.column) for f in blocked.findings]


@pytest.mark.parametrize("damage, column, message", [
    (corpus.timestamps_without_offset, "queried_at",
     "is a timestamp without time zone; the contract requires UTC instants (timestamp with tz)"),
    (corpus.query_id_as_integer, "query_id", "has type Int64, expected String"),
    (corpus.drop_column("team_code"), "team_code", "column(s) missing"),
])
def test_types_and_columns_from_the_footer(small_landing, tmp_path, damage, column, message):
    landing = corpus.copy_landing(small_landing, tmp_path / "landing")
    damage(landing, "person", "2025-02")
    report = check_landing_zone(landing, SAMPLE_THEMES_PATH)
    assert [(f.file, f.column, f.message) for f in findings(report, "blocking")] == [
        ("meos/person_queries/2025-02.parquet", column, message)]


def test_values_that_do_not_parse_are_found_by_the_runs_own_read(small_landing, tmp_path):
    landing = corpus.copy_landing(small_landing, tmp_path / "landing")
    info = corpus.hit_as_yes_no(landing, "plate", "2025-01")
    report = check_landing_zone(landing, SAMPLE_THEMES_PATH)
    assert [(f.file, f.message) for f in findings(report, "blocking")] == [
        ("meos/plate_queries/2025-01.parquet",
         f"column hit: {info['count']} value(s) are not true/false")]


@pytest.mark.parametrize("scan_rows", [None, 1_000])
def test_raw_identifiers_are_found_with_the_runs_guard_never_shown(small_landing, tmp_path,
                                                                   scan_rows):
    landing = corpus.copy_landing(small_landing, tmp_path / "landing")
    damage = corpus.PRIVACY_DAMAGES["bsn_in_query_reason"]
    # NOTE: every row, so that a spread of 1,000 rows must meet it too.
    frame = corpus.load_month(landing, "person", "2025-01")
    corpus.save_month(landing, "person", "2025-01",
                      frame.with_columns(pl.lit(damage.values[0]).alias("query_reason")))
    report = check_landing_zone(landing, SAMPLE_THEMES_PATH, scan_rows=scan_rows)
    [finding] = findings(report, "blocking")
    scanned = frame.height if scan_rows is None else scan_rows
    assert finding == Finding("blocking", "meos/person_queries/2025-01.parquet", "query_reason",
                              f"{scanned} values look like a BSN; the run refuses the whole file")
    assert damage.values[0] not in format_report(report)


def test_layout_months_and_sizes(small_landing, tmp_path):
    landing = corpus.copy_landing(small_landing, tmp_path / "landing")
    corpus.copy_month(landing, "2025-02", "2025-04")  # 2025-03 is missing
    corpus.remove_file(landing, "plate", "2025-04")
    corpus.both_formats(landing, "person", "2025-01")
    (landing / "meos" / "person_queries" / "2025-5.parquet").write_bytes(b"")
    shutil.copy(landing / "cbs" / "persons.parquet", landing / "cbs" / "persons.csv")
    report = check_landing_zone(landing, SAMPLE_THEMES_PATH)
    blocking = {(f.file, f.message) for f in findings(report, "blocking")}
    assert {
        ("meos/person_queries/2025-5.parquet",
         "not a <YYYY-MM>.parquet or .csv export; rename or remove it"),
        ("meos/person_queries", "both 2025-01.parquet and 2025-01.csv exist; keep one"),
        ("meos/plate_queries/2025-04.parquet",
         "file missing: month 2025-04 has no plate queries (that month fails in the run)"),
        ("cbs", "both persons.parquet and persons.csv exist; keep one"),
    } == blocking
    assert ("warning", "meos", "month(s) 2025-03 missing between 2025-01 and 2025-04: the "
            "statistics cover the months present") in [
        (f.severity, f.file, f.message) for f in report.findings]


def test_a_much_smaller_month_and_population_years(small_landing, tmp_path):
    landing = corpus.copy_landing(small_landing, tmp_path / "landing")
    corpus.copy_month(landing, "2025-01", "2025-03")
    frame = corpus.load_month(landing, "person", "2025-03")
    corpus.save_month(landing, "person", "2025-03", frame.head(100))
    population = landing / "cbs" / "population.parquet"
    pl.read_parquet(population).with_columns(pl.lit(2022, pl.Int64).alias("year")).write_parquet(
        population)
    report = check_landing_zone(landing, SAMPLE_THEMES_PATH)
    warnings = {(f.file, f.message) for f in findings(report, "warning")}
    sizes = sorted(pl.read_parquet(corpus.month_path(landing, "person", m)).height
                   for m in ("2025-01", "2025-02", "2025-03"))
    assert ("meos/person_queries/2025-03.parquet", f"100 rows, less than half the median month "
            f"({sizes[1]:,}): an incomplete export?") in warnings
    assert ("cbs/population.parquet", "no population on 1 January 2025: periods in 2025 are "
            "compared with the population of 2022") in warnings


def test_a_broken_reference_table_is_named(small_landing, tmp_path):
    landing = corpus.copy_landing(small_landing, tmp_path / "landing")
    teams = landing / "reference" / "team_areas.csv"
    frame = pl.read_csv(teams)
    pl.concat([frame, frame.head(1).with_columns(pl.lit("AMS-W1").alias("team_code"))]).write_csv(
        teams)
    report = check_landing_zone(landing, SAMPLE_THEMES_PATH)
    assert [(f.file, f.message) for f in findings(report, "blocking")] == [
        ("reference/team_areas.csv", "each wijk belongs to exactly one team: 2 row(s)")]


def test_the_themes_file_itself(small_landing, tmp_path):
    themes = tmp_path / "themes.yaml"
    themes.write_text("version: 1\nthemes:\n  - {name: Bad Name, title: t, description: d}\n")
    report = check_landing_zone(small_landing, themes)
    [finding] = findings(report, "blocking")
    assert finding.file == str(themes) and finding.message.startswith("theme #1: field 'name'")


def test_findings_of_several_files_come_in_file_order(small_landing, tmp_path):
    # The files are judged side by side; the report lists them as if one at a time.
    landing = corpus.copy_landing(small_landing, tmp_path / "landing")
    corpus.add_extra_column(landing, "plate", "2025-02")
    corpus.hit_as_yes_no(landing, "plate", "2025-01")
    corpus.drop_column("team_code")(landing, "person", "2025-02")
    corpus.add_extra_column(landing, "person", "2025-01")
    report = check_landing_zone(landing, SAMPLE_THEMES_PATH)
    assert [(f.severity, f.file) for f in report.findings if f.file.startswith("meos/")] == [
        ("warning", "meos/person_queries/2025-01.parquet"),
        ("blocking", "meos/plate_queries/2025-01.parquet"),
        ("blocking", "meos/person_queries/2025-02.parquet"),
        ("warning", "meos/plate_queries/2025-02.parquet"),
    ]
