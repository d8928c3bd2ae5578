"""The whole graph on a small synthetic landing zone: files written, every row accounted for, and
every crude ratio equal to one computed here independently from the landing-zone files."""

from __future__ import annotations

import hashlib
from datetime import date

import dagster as dg
import polars as pl
import pytest

from assets.disproportionality import BENCHMARKS
from assets.report import LANGUAGES, report_file_name
from tests.report_html import assert_same_numbers, check_published_cells, parse_report

OUT = "out_team_disproportionality.parquet"


def test_run_succeeds(pipeline_run):
    assert pipeline_run.failures == []


@pytest.mark.parametrize("name", [
    "raw_persons.parquet", "raw_population.parquet", "raw_team_areas.parquet",
    "core_persons.parquet", "core_population.parquet", "core_team_areas.parquet", OUT,
    "raw_person_queries/2025-01.parquet", "raw_plate_queries/2025-02.parquet",
    "core_person_queries/2025-02.parquet", "core_plate_queries/2025-01.parquet",
    "core_quarantine/2025-01.parquet",
])
def test_warehouse_layout(pipeline_run, name):
    assert (pipeline_run.warehouse / name).is_file()


def test_no_temporary_files_left(pipeline_run):
    assert not [p for p in pipeline_run.warehouse.rglob("*") if p.name.endswith(".tmp")]


def _copied(pipeline_run, asset: str) -> dict[str | None, str]:
    """sha256 in the metadata of each materialisation of `asset`, by partition."""
    records = pipeline_run.instance.fetch_materializations(dg.AssetKey(asset), limit=100).records
    return {r.asset_materialization.partition: r.asset_materialization.metadata["sha256"].value
            for r in records}


@pytest.mark.parametrize("query_type", ["person", "plate"])
def test_raw_months_delivered_in_the_contracts_types_are_the_landing_files(pipeline_run,
                                                                             query_type):
    """The sample's Parquet exports are the typed tables: copied byte for byte, not rewritten,
    with the copy's sha256 in the materialisation's metadata."""
    asset = f"raw_{query_type}_queries"
    copied = _copied(pipeline_run, asset)
    landing = pipeline_run.landing / "meos" / f"{query_type}_queries"
    months = sorted(path.stem for path in landing.glob("*.parquet"))
    assert sorted(copied) == months
    for month in months:
        delivered = (landing / f"{month}.parquet").read_bytes()
        assert (pipeline_run.warehouse / asset / f"{month}.parquet").read_bytes() == delivered
        assert copied[month] == hashlib.sha256(delivered).hexdigest()


@pytest.mark.parametrize("name", ["persons", "population"])
def test_cbs_files_delivered_in_the_contracts_types_are_copied_too(pipeline_run, name):
    delivered = (pipeline_run.landing / "cbs" / f"{name}.parquet").read_bytes()
    assert (pipeline_run.warehouse / f"raw_{name}.parquet").read_bytes() == delivered
    assert _copied(pipeline_run, f"raw_{name}") == {None: hashlib.sha256(delivered).hexdigest()}


def test_counts_in_equal_counts_out(pipeline_run):
    w = pipeline_run.warehouse
    for month in ("2025-01", "2025-02"):
        rows_in = sum(pl.read_parquet(w / f"raw_{t}_queries" / f"{month}.parquet").height
                      for t in ("person", "plate"))
        rows_out = sum(pl.read_parquet(w / f"core_{t}" / f"{month}.parquet").height
                       for t in ("person_queries", "plate_queries", "quarantine"))
        assert rows_in == rows_out > 0


def test_rows_for_every_team_both_types_and_benchmarks(pipeline_run):
    out = pl.read_parquet(pipeline_run.warehouse / OUT)
    teams = set(pl.read_csv(pipeline_run.landing / "reference" / "team_areas.csv")["team_code"])
    for query_type in ("person", "plate"):
        for benchmark in BENCHMARKS:
            part = out.filter(query_type=query_type, benchmark=benchmark)
            assert set(part["team_code"]) == teams | {"ALL"}
    assert out.select("period_start", "period_end").unique().rows() == [
        (date(2025, 1, 1), date(2025, 2, 28))]


def independent_crude_ratios(landing) -> pl.DataFrame:
    """team × origin crude rate ratios vs NL straight from the landing files (team_residents)."""
    persons = pl.read_parquet(landing / "cbs" / "persons.parquet").select("pseudonym", "origin")
    teams = pl.read_csv(landing / "reference" / "team_areas.csv")
    population = (
        pl.read_parquet(landing / "cbs" / "population.parquet")
        .join(teams, on="wijk_code")
        .group_by("team_code", "origin").agg(pl.col("population").sum())
    )
    frames = []
    for query_type, subject in (("person", "subject_pseudonym"), ("plate", "holder_pseudonym")):
        queries = pl.read_parquet(landing / "meos" / f"{query_type}_queries" / "*.parquet")
        counts = (
            queries.join(persons, left_on=subject, right_on="pseudonym")
            .group_by("team_code", "origin").len("n")
            .join(population, on=["team_code", "origin"], how="right")
            .with_columns(pl.col("n").fill_null(0), query_type=pl.lit(query_type))
        )
        rate = pl.col("n") / pl.col("population")
        ref = counts.filter(origin="NL").select("team_code", ref_rate=rate)
        frames.append(counts.join(ref, on="team_code").with_columns(expected=rate / pl.col("ref_rate")))
    return pl.concat(frames)


def test_crude_ratio_equals_independent_computation(pipeline_run):
    out = pl.read_parquet(pipeline_run.warehouse / OUT).filter(
        pl.col("benchmark") == "team_residents", pl.col("team_code") != "ALL")
    expected = independent_crude_ratios(pipeline_run.landing)
    joined = out.join(expected, on=["query_type", "team_code", "origin"], how="inner")
    assert joined.height == out.height == 2 * 13 * 10
    assert (joined["query_count"] == joined["n"]).all()
    assert ((joined["rate_ratio"] - joined["expected"]).abs() <= 1e-9 * joined["expected"]).all()
    inside = joined.filter(pl.col("origin") != "NL")
    assert ((inside["rate_ratio_ci_low"] <= inside["rate_ratio"])
            & (inside["rate_ratio"] <= inside["rate_ratio_ci_high"])).all()


PUBLISHED_TABLES = (
    "out_count_models", "out_data_suitability", "out_outcome_test", "out_repeat_checks",
    "out_team_disproportionality", "out_team_trends", "out_thematic_disproportionality",
    "out_veil_of_darkness",
)
"""Every table publication/ can hold (DESIGN.md §5), named here rather than counted."""
EMPTY_IN_TWO_MONTHS = ("out_team_trends",)
"""Tables without rows after two months (no complete quarter): nothing of them is published."""


def test_every_table_is_published_with_rows_and_a_companion(pipeline_run):
    from assets.release import SPECS

    folder = pipeline_run.warehouse / "publication"
    with_rows = tuple(n for n in PUBLISHED_TABLES if n not in EMPTY_IN_TWO_MONTHS)
    assert tuple(sorted(p.stem for p in folder.glob("out_*.csv"))) == with_rows
    assert tuple(sorted(SPECS)) == PUBLISHED_TABLES
    for name in EMPTY_IN_TWO_MONTHS:
        assert pl.read_parquet(pipeline_run.warehouse / f"{name}.parquet").is_empty()
        assert not (folder / f"{name}.json").exists()
    for name in with_rows:
        table = pl.read_csv(folder / f"{name}.csv", infer_schema_length=None)
        unpublished = pl.read_parquet(pipeline_run.warehouse / f"{name}.parquet")
        assert table.height == unpublished.height > 0, name
        assert (folder / f"{name}.json").is_file()


def test_publication_passes_disclosure_control(pipeline_run):
    from assets.release import SPECS

    folder = pipeline_run.warehouse / "publication"
    published = sorted(folder.glob("out_*.csv"))
    assert [p.stem for p in published] == [n for n in PUBLISHED_TABLES
                                           if n not in EMPTY_IN_TWO_MONTHS]
    for path in published:
        spec = SPECS[path.stem]
        table = pl.read_csv(path, infer_schema_length=None)
        assert (path.with_suffix(".json")).is_file()
        for column in spec.published_counts:
            if column in table.columns:
                values = table[column].drop_nulls().cast(pl.Int64)
                assert not values.is_between(1, 9).any(), (path.name, column)
        hidden = table.filter(pl.col("is_suppressed"))
        for column in spec.estimate_columns + spec.published_counts:
            if column in hidden.columns:
                assert hidden[column].null_count() == hidden.height, (path.name, column)


def test_the_attacker_model_pins_nothing_in_the_publication(pipeline_run):
    """The whole publication of a sparse two-month panel against assets.attacker, with the
    warehouse copies (full precision, reasons) as the true counts."""
    from assets.attacker import Rules, attack
    from assets.release import declare_relations, read_published, structural_zeros
    from assets.paths import resolve_themes_file
    from assets.themes import load_themes

    published = read_published(pipeline_run.warehouse / "publication")
    assert all("suppression_reason" not in t.columns for t in published.values())
    truth = {n: pl.read_parquet(pipeline_run.warehouse / "disclosure" / f"{n}.parquet").drop(
        "is_suppressed", "suppression_reason") for n in published}
    themes = load_themes(resolve_themes_file("", pipeline_run.landing))
    report = attack(published, declare_relations(truth, reference="NL", themes=themes),
                    Rules(threshold=10, significant_digits=3), public=truth, truth=truth,
                    structural=structural_zeros(truth, themes))
    assert report.stats["suppressed_counts"] > 0
    assert report.stats["pinned"] == 0
    assert report.stats["inconsistent_components"] == 0



REPORT_SECTIONS = ["summary", "data-suitability", "disproportionality", "funnel", "outcome-test",
                   "repeat-checks", "veil-of-darkness", "count-models", "themes", "methods"]


def _published_csvs(folder) -> dict[str, pl.DataFrame]:
    return {p.stem: pl.read_csv(p, infer_schema_length=None, try_parse_dates=True)
            for p in sorted(folder.glob("out_*.csv"))}


@pytest.mark.parametrize("language", LANGUAGES)
def test_report_shows_the_published_tables(pipeline_run, language):
    folder = pipeline_run.warehouse / "publication"
    page = (folder / report_file_name(language)).read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page
    assert page.count("<svg") >= 8
    report = parse_report(page)
    assert report.lang == language
    assert report.sections == REPORT_SECTIONS
    csvs = _published_csvs(folder)
    shown = {t.source for t in report.tables if t.source}
    assert shown == set(csvs) - {"out_thematic_disproportionality"}
    # Every value cell equals the published CSV; suppressed rows show only the mark.
    assert check_published_cells(report, csvs) > 1_000
    assert any(row.is_suppressed for t in report.tables if t.source for row in t.rows)


def test_both_reports_are_published_with_the_same_numbers(pipeline_run):
    folder = pipeline_run.warehouse / "publication"
    dutch, english = (parse_report((folder / report_file_name(language)).read_text(encoding="utf-8"))
                      for language in ("nl", "en"))
    assert_same_numbers(dutch, english)
    manifest = pl.read_parquet(pipeline_run.warehouse / "publication.parquet")
    assert {"thematic_report.html", "thematic_report.en.html"} <= set(manifest["file"])


def test_the_count_models_alone_equal_those_beside_the_team_tables(pipeline_run, tmp_path):
    """out_count_models is an output of out_team_tables and reads the team tables' cells when
    they are computed; selected alone it groups the query rows itself, to the same table."""
    import shutil

    import dagster as dg
    from polars.testing import assert_frame_equal

    from assets.frames import list_months
    from pipelines.definitions import build_definitions

    warehouse = shutil.copytree(pipeline_run.warehouse, tmp_path / "warehouse")
    (warehouse / "out_count_models.parquet").unlink()
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("month", list_months(pipeline_run.landing))
    job = build_definitions(str(pipeline_run.landing), str(warehouse)).resolve_job_def(
        "statistics_job")
    result = job.execute_in_process(instance=instance, raise_on_error=False,
                                    asset_selection=[dg.AssetKey("out_count_models")])
    assert result.success
    assert {event.asset_key for event in result.get_asset_materialization_events()} == {
        dg.AssetKey("out_count_models")}
    assert_frame_equal(pl.read_parquet(warehouse / "out_count_models.parquet"),
                       pl.read_parquet(pipeline_run.warehouse / "out_count_models.parquet"),
                       check_exact=True)


def test_every_companion_names_the_fingerprint_of_the_landing_files(pipeline_run):
    import json

    from assets.provenance import fingerprint_files
    from assets.publication import landing_files

    expected = fingerprint_files(landing_files(pipeline_run.landing))
    companions = sorted((pipeline_run.warehouse / "publication").glob("out_*.json"))
    assert companions
    for path in companions:
        assert json.loads(path.read_text())["input_fingerprint"] == expected, path.name
