"""Errors that help: configuration errors are shown in full; a library error that may quote a
person-level value is withheld, naming the asset, the month, the files and the columns instead,
and its value reaches neither the failure message nor the Dagster event log."""

from __future__ import annotations

import shutil

import dagster as dg
import polars as pl
import pytest

import assets.monthly
import assets.statistics
from assets.frames import list_months
from assets.privacy import WITHHOLDS_VALUES
from pipelines.definitions import build_definitions, defs
from pipelines.runs import step_failures

SECRET = "geheim-7f3a91"
"""A value a library error quotes; it must not appear anywhere."""


def leak_a_value(*_args, **_kwargs):
    """Fail as polars does on a value it cannot convert: the message quotes the value."""
    pl.DataFrame({"hit": [SECRET]}).select(pl.col("hit").cast(pl.Int64))


@pytest.fixture
def warehouse(pipeline_run, tmp_path):
    """A private copy of the shared run's warehouse: jobs below rewrite some of its files."""
    return shutil.copytree(pipeline_run.warehouse, tmp_path / "warehouse")


def execute(landing, warehouse, job_name, *, themes_file="", partition=None, selection=None,
            run_config=None):
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("month", list_months(landing))
    job = build_definitions(str(landing), str(warehouse), themes_file).resolve_job_def(job_name)
    result = job.execute_in_process(instance=instance, partition_key=partition,
                                    asset_selection=selection, run_config=run_config,
                                    raise_on_error=False)
    events = "\n".join(str(event) for event in instance.all_logs(result.run_id))
    return step_failures(result, job_name, partition), events


def test_every_asset_is_wrapped():
    unwrapped = [a.op.name for a in defs.assets
                 if not getattr(a.op.compute_fn.decorated_fn, WITHHOLDS_VALUES, False)]
    assert unwrapped == []


def test_a_theme_naming_unknown_teams_names_the_theme_and_the_teams(pipeline_run, warehouse,
                                                                    tmp_path):
    themes = tmp_path / "themes.yaml"
    themes.write_text("version: 1\nthemes:\n  - name: own_teams\n    title: t\n"
                      "    description: d\n    teams: [AMS-C1, BT-NOORD]\n")
    failures, _ = execute(pipeline_run.landing, warehouse, "thematic_job", themes_file=str(themes))
    [failure] = failures
    assert failure.step == "out_thematic_disproportionality"
    assert "withheld" not in failure.message
    teams = pl.read_csv(pipeline_run.landing / "reference" / "team_areas.csv")["team_code"]
    known = sorted(set(teams))
    assert (f"{themes}: theme 'own_teams': field 'teams': unknown team code(s) 'BT-NOORD'; "
            f"known: " + ", ".join(f"'{code}'" for code in known)) in failure.message


def test_an_invalid_setting_is_shown_in_full(pipeline_run, warehouse):
    config = {"ops": {"out_outcome_test": {"config": {"reference_origin": "XX"}}}}
    failures, _ = execute(pipeline_run.landing, warehouse, "statistics_job",
                          selection=[dg.AssetKey("out_outcome_test")], run_config=config)
    [failure] = failures
    assert "reference_origin 'XX' is not an origin code (known: NL, EU," in failure.message
    assert "withheld" not in failure.message


def test_a_library_error_in_a_statistics_asset_is_withheld_with_where_to_look(
        pipeline_run, warehouse, monkeypatch):
    monkeypatch.setattr(assets.statistics, "compute_outcome_test", leak_a_value)
    failures, events = execute(pipeline_run.landing, warehouse, "statistics_job",
                               selection=[dg.AssetKey("out_outcome_test")])
    [failure] = failures
    assert failure.message.startswith(
        "assets.privacy.WithheldError: InvalidOperationError while computing out_outcome_test "
        "(input files core_person_queries/*.parquet, core_plate_queries/*.parquet in the "
        "warehouse; column(s) core_person_queries.hit, core_plate_queries.hit); the message is "
        "withheld")
    assert SECRET not in failure.message and SECRET not in events


def test_a_library_error_in_a_monthly_asset_is_withheld_naming_the_month(
        pipeline_run, warehouse, monkeypatch):
    monkeypatch.setattr(assets.monthly.linkage, "link_queries", leak_a_value)
    failures, events = execute(pipeline_run.landing, warehouse, "monthly_job",
                               partition="2025-02")
    [failure] = [f for f in failures if f.step == "core_queries"]
    assert ("InvalidOperationError while computing core_queries (month 2025-02; input files "
            "raw_person_queries/2025-02.parquet, raw_plate_queries/2025-02.parquet, "
            "core_team_areas.parquet, core_persons.parquet in the warehouse; column(s) "
            "raw_person_queries.hit, raw_plate_queries.hit)") in failure.message
    assert SECRET not in failure.message and SECRET not in events
