"""Great Expectations suites run as blocking checks in the real graph: they pass on the sample,
and a failing suite stops everything downstream of its asset for that month."""

from __future__ import annotations

import shutil

import dagster as dg
import polars as pl

from assets.provenance import PROJECT_ROOT
from pipelines.cli import run_pipeline
from pipelines.definitions import defs


def test_every_suite_is_a_blocking_check():
    suites = {p.stem for p in (PROJECT_ROOT / "expectations").glob("*.json")}
    checks = {}
    for check_def in defs.asset_checks:
        for spec in check_def.check_specs:
            checks[spec.asset_key.to_user_string()] = spec
    assert suites <= set(checks)
    assert all(checks[name].blocking for name in suites)


def test_suites_pass_on_the_sample(pipeline_run):
    evaluations = []
    for check_def in defs.asset_checks:
        for key in check_def.check_keys:
            record = pipeline_run.instance.event_log_storage.get_latest_asset_check_execution_by_key(
                [key]).get(key)
            evaluations.append((key, record))
    assert evaluations
    for key, record in evaluations:
        assert record is not None, key
        assert record.status.value == "SUCCEEDED", key


def test_rows_received_equal_quarantined_plus_valid(pipeline_run):
    table = pl.read_parquet(pipeline_run.warehouse / "out_data_suitability.parquet")
    assert (table["rows_received"] == table["rows_quarantined"] + table["rows_valid"]).all()
    assert set(table.filter(team_code="ALL")["verdict"]) <= {
        "suitable", "suitable with caveats", "not suitable"}


def test_failing_suite_blocks_the_month(small_landing, tmp_path):
    landing = tmp_path / "landing"
    shutil.copytree(small_landing, landing)
    path = landing / "meos" / "person_queries" / "2025-02.parquet"
    frame = pl.read_parquet(path)
    # A third of the rows dated 40 days later: each would be quarantined as outside_month, but
    # the raw suite's month bounds (at least 90% inside the month) stop the whole month.
    frame.with_columns(queried_at=pl.when(pl.int_range(pl.len()) % 3 == 0)
                       .then(pl.col("queried_at") + pl.duration(days=40))
                       .otherwise("queried_at")).write_parquet(path)
    warehouse = tmp_path / "warehouse"
    failures = run_pipeline(landing, warehouse, dg.DagsterInstance.ephemeral())
    assert failures, "the suite should have failed"
    assert any("raw_person_queries" in f.step and f.partition == "2025-02" for f in failures)
    assert not (warehouse / "raw_person_queries" / "2025-02.parquet").exists()
    assert not (warehouse / "core_person_queries" / "2025-02.parquet").exists()
    assert (warehouse / "core_person_queries" / "2025-01.parquet").exists()
    assert not (warehouse / "out_team_disproportionality.parquet").exists()
