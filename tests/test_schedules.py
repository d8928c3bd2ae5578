"""Schedules, sensors, backfills and the thematic job: cron, target, time zone, reactions."""

from __future__ import annotations

import shutil

import dagster as dg
import polars as pl

from assets.frames import list_months
from assets.resources import LandingZone
from pipelines.cli import run_pipeline
from pipelines.definitions import defs
from pipelines.schedules import landing_sensor


def test_schedules_cron_target_and_time_zone():
    expected = {
        "monthly_schedule": ("0 6 5 * *", "statistics_job"),
        "thematic_schedule": ("0 7 1 1,4,7,10 *", "thematic_job"),
    }
    for name, (cron, job) in expected.items():
        schedule = defs.resolve_schedule_def(name)
        assert schedule.cron_schedule == cron
        assert schedule.job_name == job
        assert schedule.execution_timezone == "Europe/Amsterdam"


def test_sensors_target_jobs():
    assert {j.name for j in defs.resolve_sensor_def("landing_sensor").jobs} == {
        "monthly_job", "reference_job"}
    assert defs.resolve_sensor_def("statistics_after_monthly").job_name == "statistics_job"


def test_landing_sensor_registers_new_months_and_runs_them(small_landing, tmp_path):
    landing = tmp_path / "landing"
    shutil.copytree(small_landing, landing)
    instance = dg.DagsterInstance.ephemeral()

    def evaluate() -> dg.SensorResult:
        context = dg.build_sensor_context(instance=instance,
                                          resources={"landing": LandingZone(path=str(landing))})
        return landing_sensor(context)

    first = evaluate()
    assert first.dynamic_partitions_requests[0].partition_keys == ["2025-01", "2025-02"]
    monthly = {r.partition_key: r.run_key for r in first.run_requests if r.job_name == "monthly_job"}
    assert set(monthly) == {"2025-01", "2025-02"}
    assert [r.job_name for r in first.run_requests].count("reference_job") == 1
    instance.add_dynamic_partitions("month", ["2025-01", "2025-02"])

    # A new month lands: it is registered, the old months keep their run keys (no rerun).
    for query_type in ("person", "plate"):
        folder = landing / "meos" / f"{query_type}_queries"
        shutil.copy(folder / "2025-02.parquet", folder / "2025-03.parquet")
    second = evaluate()
    assert second.dynamic_partitions_requests[0].partition_keys == ["2025-03"]
    again = {r.partition_key: r.run_key for r in second.run_requests if r.job_name == "monthly_job"}
    assert again["2025-01"] == monthly["2025-01"] and again["2025-02"] == monthly["2025-02"]
    assert "2025-03" in again


def test_landing_sensor_run_keys_follow_redelivered_files(small_landing, tmp_path):
    landing = tmp_path / "landing"
    shutil.copytree(small_landing, landing)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("month", ["2025-01", "2025-02"])

    def run_keys() -> dict[str, str]:
        context = dg.build_sensor_context(instance=instance,
                                          resources={"landing": LandingZone(path=str(landing))})
        result = landing_sensor(context)
        return {r.partition_key or r.job_name: r.run_key for r in result.run_requests}

    first = run_keys()
    assert set(first) == {"reference_job", "2025-01", "2025-02"}

    # The police re-deliver January's person queries (one row fewer): January runs again.
    path = landing / "meos" / "person_queries" / "2025-01.parquet"
    pl.read_parquet(path).head(-1).write_parquet(path)
    second = run_keys()
    assert second["2025-01"] != first["2025-01"]
    assert (second["2025-02"], second["reference_job"]) == (first["2025-02"], first["reference_job"])

    # CBS delivers a changed population file: the reference tables run again, the months do not.
    population = landing / "cbs" / "population.parquet"
    pl.read_parquet(population).with_columns(pl.col("population") + 5).write_parquet(population)
    third = run_keys()
    assert third["reference_job"] != second["reference_job"]
    assert (third["2025-01"], third["2025-02"]) == (second["2025-01"], second["2025-02"])
    assert run_keys() == third  # nothing changed: the same keys, so no new runs


def test_a_successful_month_requests_the_statistics(pipeline_run):
    instance = pipeline_run.instance
    [run] = [r for r in instance.get_runs() if r.job_name == "monthly_job"][:1]
    [success] = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_SUCCESS)
    context = dg.build_run_status_sensor_context(
        sensor_name="statistics_after_monthly", dagster_event=success.dagster_event,
        dagster_instance=instance, dagster_run=run)
    request = defs.resolve_sensor_def("statistics_after_monthly")(context)
    assert request.run_key == run.run_id


def private_warehouse(pipeline_run, tmp_path):
    """A copy of the shared run's warehouse, so a test that reruns steps changes nothing shared."""
    return shutil.copytree(pipeline_run.warehouse, tmp_path / "warehouse")


def test_backfill_reloads_only_the_given_months(pipeline_run, tmp_path):
    instance = pipeline_run.instance
    before = instance.get_runs_count()
    failures = run_pipeline(pipeline_run.landing, private_warehouse(pipeline_run, tmp_path), instance,
                            backfill=("2025-02", "2025-02"))
    assert failures == []
    runs = instance.get_runs(limit=instance.get_runs_count() - before)
    monthly = [r for r in runs if r.job_name == "monthly_job"]
    assert [r.tags["dagster/partition"] for r in monthly] == ["2025-02"]
    assert len(list_months(pipeline_run.landing)) == 2


def test_themes_come_out_of_the_run(pipeline_run):
    table = pl.read_parquet(pipeline_run.warehouse / "out_thematic_disproportionality.parquet")
    themes = set(table["theme"])
    # NOTE: the small sample covers Jan-Feb 2025, so the summer theme has no months.
    assert {"traffic_checks", "young_men", "night_hours", "city_centre_teams"} <= themes
    assert "summer_2025" not in themes
    young = table.filter(theme="young_men", team_code="ALL", benchmark="resident_only",
                         query_type="person")
    # A one-stratum theme: the standardised ratio is the crude one.
    assert ((young["std_ratio"] - young["rate_ratio"]).abs() < 1e-9).all()
    assert set(table.filter(theme="city_centre_teams")["team_code"]) == {"AMS-C1", "AMS-C2"}


def test_stopcheck_run_theme_runs_the_thematic_job(pipeline_run, tmp_path):
    instance = pipeline_run.instance
    warehouse = private_warehouse(pipeline_run, tmp_path)
    failures = run_pipeline(pipeline_run.landing, warehouse, instance,
                            theme="night_hours")
    assert failures == []
    last = instance.get_runs(limit=1)[0]
    assert last.job_name == "thematic_job"
    table = pl.read_parquet(warehouse / "out_thematic_disproportionality.parquet")
    assert set(table["theme"]) == {"night_hours"}
