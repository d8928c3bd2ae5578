"""The `stopcheck` commands as a new user meets them: `check` in seconds, `run` stopping before it
starts on a blocking finding, and a run showing progress and a summary without Dagster's
telemetry banner."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

from assets.run_summary import format_summary, summarise_run
from pipelines.cli import main
from tests import corpus

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(monkeypatch, tmp_path):
    """Point the CLI at temporary folders; return a function that sets the landing zone."""
    monkeypatch.setenv("STOPCHECK_WAREHOUSE_DIR", str(tmp_path / "warehouse"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.delenv("STOPCHECK_THEMES_FILE", raising=False)
    return lambda landing: monkeypatch.setenv("STOPCHECK_LANDING_DIR", str(landing))


def test_check_exits_0_on_the_sample_and_1_on_a_blocking_finding(small_landing, tmp_path, env,
                                                                 capsys):
    env(small_landing)
    assert main(["check"]) == 0
    assert "nothing blocks a run" in capsys.readouterr().out
    broken = corpus.copy_landing(small_landing, tmp_path / "broken")
    corpus.truncate_file(broken, "person", "2025-01")
    env(broken)
    assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert "blocking meos/person_queries/2025-01.parquet" in out
    assert out.endswith("a run would stop: fix the blocking findings first\n")


def test_a_command_freezes_what_it_leaves_only_as_the_process_exits(small_landing, env,
                                                                    monkeypatch):
    registered = []
    monkeypatch.setattr("atexit.register", registered.append)
    env(small_landing)
    frozen_before = gc.get_freeze_count()
    assert main(["check"]) == 0
    assert gc.get_freeze_count() == frozen_before  # a second call in this process still collects
    assert registered == [gc.freeze]


def test_a_configuration_error_is_one_line_and_exit_2(monkeypatch, capsys):
    from assets.frames import ConfigError
    from pipelines import cli

    def refuse(args):
        raise ConfigError("/srv/stopcheck/expectations: no Great Expectations suite for "
                          "core_quarantine.json")

    monkeypatch.setattr(cli, "_cmd_check", refuse)
    assert main(["check"]) == 2
    err = capsys.readouterr().err
    assert err == ("stopcheck check: /srv/stopcheck/expectations: no Great Expectations suite "
                   "for core_quarantine.json\n")


def test_run_stops_before_it_starts_on_a_blocking_finding(small_landing, tmp_path, env, capsys):
    broken = corpus.copy_landing(small_landing, tmp_path / "broken")
    corpus.timestamps_without_offset(broken, "plate", "2025-02")
    env(broken)
    assert main(["run"]) == 1
    err = capsys.readouterr().err
    assert "meos/plate_queries/2025-02.parquet" in err and "queried_at" in err
    assert "stopcheck run stopped before it started" in err
    assert not (tmp_path / "warehouse").exists()


def test_a_new_users_run_shows_progress_and_a_summary_and_no_telemetry_banner(small_landing,
                                                                              tmp_path):
    # NOTE: exports with the unit's own team codes and the shipped themes.yaml (issue 14).
    landing = corpus.new_users_exports(small_landing, tmp_path / "landing")
    home = tmp_path / "dagster_home"  # absent, as on a fresh clone
    warehouse = tmp_path / "warehouse"
    env = {**os.environ, "STOPCHECK_LANDING_DIR": str(landing),
           "STOPCHECK_WAREHOUSE_DIR": str(warehouse), "DAGSTER_HOME": str(home)}
    env.pop("STOPCHECK_THEMES_FILE", None)
    run = subprocess.run([sys.executable, "-m", "pipelines.cli", "run"], env=env, cwd=REPO,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    assert "Telemetry" not in out + run.stderr
    assert yaml.safe_load((home / "dagster.yaml").read_text())["telemetry"] == {"enabled": False}
    assert "pre-flight check: 1 warning(s), nothing blocks the run" in out
    # plain lines (stdout is a pipe): every step of every month, each month, with times
    for month in ("2025-01", "2025-02"):
        assert f"month {month}: core_queries ok in " in out
        assert f"month {month}: raw_person_queries ok in " in out
    lines = [line.split("] ", 1)[1] for line in out.splitlines() if line.endswith("months)")]
    assert [line.split(" in ")[0] for line in lines] == ["2025-01 ok", "2025-02 ok"]
    assert "statistics and publication: out_team_tables ok in " in out
    summary = out[out.index("\nsummary\n"):]
    received = sum(pl.read_parquet(path).height for path in (landing / "meos").rglob("*.parquet"))
    assert "months       2 (2025-01..2025-02)" in summary
    assert sum(summarise_run(warehouse).rows_received.values()) == received
    assert "age-sex standardised ratio vs NL (95% CI):" in summary
    assert f"report       {warehouse / 'publication' / 'thematic_report.html'} (Dutch)" in summary
    thematic = pl.read_parquet(warehouse / "out_thematic_disproportionality.parquet")
    assert set(thematic["theme"]) == {"traffic_checks", "young_men", "night_hours",
                                      "young_men_night_traffic"}  # summer_2025: no month
    assert set(thematic["team_code"]) - {"ALL"} <= set(
        pl.read_csv(landing / "reference" / "team_areas.csv")["team_code"])


def test_summary_counts_equal_the_warehouse(pipeline_run):
    summary = summarise_run(pipeline_run.warehouse)
    w = pipeline_run.warehouse
    for query_type in ("person", "plate"):
        raw = pl.read_parquet(w / f"raw_{query_type}_queries" / "*.parquet")
        core = pl.read_parquet(w / f"core_{query_type}_queries" / "*.parquet")
        assert summary.rows_received[query_type] == raw.height
        assert summary.rows_linked[query_type] == int(core["is_linked"].sum())
    assert summary.months == ("2025-01", "2025-02")
    assert sum(summary.verdicts.values()) == 2 * 2  # month × query type
    published = pl.read_csv(w / "publication" / "out_team_disproportionality.csv")
    for headline in summary.headlines:
        origin, ratio, *_ = headline.ratios[0]
        row = published.filter(query_type=headline.query_type, team_code="ALL",
                               benchmark="team_residents", origin=origin)
        assert row["std_ratio"].to_list() == [ratio]
        assert ratio == max(r[1] for r in headline.ratios)


def test_summary_of_a_warehouse_without_statistics(tmp_path):
    # NOTE: `stopcheck run --theme` on a new warehouse computes no out_data_suitability.
    summary = summarise_run(tmp_path)
    assert (summary.months, summary.headlines, summary.reports) == ((), (), ())
    assert "out_data_suitability not computed yet" in format_summary(summary, wall_seconds=1.0)


def test_the_headline_reads_the_whole_range_once_when_it_is_a_calendar_year(tmp_path):
    # a 12-month range has the dates of its calendar year: the year's rows must not repeat it
    folder = tmp_path / "publication"
    folder.mkdir()
    rows = [dict(period=period, period_start="2025-01-01", period_end="2025-12-31",
                 query_type="person", benchmark="team_residents", team_code="ALL", origin=origin,
                 std_ratio=ratio, std_ratio_ci_low=ratio - 0.1, std_ratio_ci_high=ratio + 0.1,
                 q_value=0.001, is_suppressed=False)
            for period in ("2025", "2025-01..2025-12") for origin, ratio in
            (("NL", 1.0), ("MA", 1.9), ("TR", 1.4))]
    pl.DataFrame(rows).write_csv(folder / "out_team_disproportionality.csv")
    (folder / "out_team_disproportionality.json").write_text(
        '{"settings": {"reference_origin": "NL", "confidence_level": 0.95}}')
    [headline] = summarise_run(tmp_path).headlines
    assert [origin for origin, *_ in headline.ratios] == ["MA", "TR"]
