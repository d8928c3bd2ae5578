"""On the built-in sample (12 months, default size) the pipeline recovers what was injected; on
the same sample without effects it finds none (issues 4 and 5)."""

from __future__ import annotations

import math

import dagster as dg
import polars as pl
import pytest

from assets.synthetic import SampleSpec, generate_sample
from pipelines.cli import run_pipeline

SPEC = SampleSpec()


def _run(tmp_path_factory, spec: SampleSpec, name: str):
    landing = tmp_path_factory.mktemp(f"{name}_landing")
    generate_sample(landing, spec)
    warehouse = tmp_path_factory.mktemp(f"{name}_warehouse")
    # NOTE: the numbers only; publication (and its disclosure control) has tests of its own.
    failures = run_pipeline(landing, warehouse, dg.DagsterInstance.ephemeral(), publish=False)
    assert failures == []
    return warehouse


@pytest.fixture(scope="module")
def sample_warehouse(tmp_path_factory):
    return _run(tmp_path_factory, SPEC, "effects")


@pytest.fixture(scope="module")
def null_warehouse(tmp_path_factory):
    return _run(tmp_path_factory, SPEC.without_effects(), "null")


def true_ratio(team: str, origin: str, spec: SampleSpec = SPEC) -> float:
    return spec.team_overrides.get(team, {}).get(origin, spec.true_ratios[origin])


def test_standardised_ratio_recovers_the_truth_and_crude_is_biased(sample_warehouse):
    out = pl.read_parquet(sample_warehouse / "out_team_disproportionality.parquet").filter(
        query_type="person", benchmark="resident_only", team_code="ALL")
    out = out.filter(pl.col("origin") != "NL")
    errors_std, errors_crude = [], []
    for row in out.iter_rows(named=True):
        # NOTE: at ALL level the truth is a mix over teams; teams without overrides dominate.
        if row["origin"] == "MA":
            continue
        truth = math.log(true_ratio("ALL", row["origin"]))
        errors_std.append(abs(math.log(row["std_ratio"]) - truth))
        errors_crude.append(abs(math.log(row["rate_ratio"]) - truth))
    assert sorted(errors_std)[len(errors_std) // 2] < 0.1
    assert sorted(errors_crude)[len(errors_crude) // 2] > 0.15


def test_team_ratios_recover_per_team_truth(sample_warehouse):
    out = pl.read_parquet(sample_warehouse / "out_team_disproportionality.parquet").filter(
        pl.col("query_type") == "person", pl.col("benchmark") == "resident_only",
        pl.col("team_code") != "ALL", pl.col("origin") != "NL", pl.col("std_ratio") > 0)
    errors = [abs(math.log(r["std_ratio"]) - math.log(true_ratio(r["team_code"], r["origin"])))
              for r in out.iter_rows(named=True) if r["query_count"] >= 100]
    assert len(errors) > 50
    assert sorted(errors)[len(errors) // 2] < 0.1
    w2 = out.filter(team_code="AMS-W2", origin="MA").row(0, named=True)
    assert w2["std_ratio_ci_low"] < 3.0 < w2["std_ratio_ci_high"]


def test_injected_hit_rate_differences_lie_inside_the_intervals(sample_warehouse):
    out = pl.read_parquet(sample_warehouse / "out_outcome_test.parquet").filter(
        team_code="ALL", query_type="person")
    base = SPEC.hit_rates["default"]
    for origin, rate in SPEC.hit_rates.items():
        if origin == "default":
            continue
        row = out.filter(origin=origin).row(0, named=True)
        assert row["hit_rate_ci_low"] < rate < row["hit_rate_ci_high"]
        assert row["hit_rate_diff_ci_low"] < rate - base < row["hit_rate_diff_ci_high"]
        assert row["hit_rate_diff_ci_high"] < 0


def test_null_sample_shows_no_hit_rate_difference(null_warehouse):
    out = pl.read_parquet(null_warehouse / "out_outcome_test.parquet").filter(
        team_code="ALL", query_type="person", origin="MA").row(0, named=True)
    assert out["hit_rate_diff_ci_low"] < 0 < out["hit_rate_diff_ci_high"]


def vod(warehouse, origin: str = "MA") -> dict:
    return pl.read_parquet(warehouse / "out_veil_of_darkness.parquet").filter(
        design="intertwilight", origin=origin, fixed_effects="none").row(0, named=True)


def test_injected_darkness_effect_is_found(sample_warehouse):
    row = vod(sample_warehouse)
    truth = math.log(SPEC.dark_keep["MA"])
    assert row["ci_low"] < truth < row["ci_high"]
    assert row["ci_high"] < 0
    assert row["team_code"] == "ALL"


def test_null_sample_shows_no_darkness_effect(null_warehouse):
    row = vod(null_warehouse)
    assert row["ci_low"] < 0 < row["ci_high"]


def test_null_sample_team_ratios_cover_one(null_warehouse):
    # NOTE: per team, not ALL: pooled over teams, policing intensity that differs by area
    # (higher in Zuidoost, where SR/AF/CW residents concentrate) confounds the ALL ratio even
    # without any origin effect. That is the reason to compare within areas.
    out = pl.read_parquet(null_warehouse / "out_team_disproportionality.parquet").filter(
        pl.col("query_type") == "person", pl.col("benchmark") == "resident_only",
        pl.col("team_code") != "ALL", pl.col("origin") != "NL",
        pl.col("std_ratio_ci_low").is_not_null())
    covered = ((out["std_ratio_ci_low"] < 1) & (1 < out["std_ratio_ci_high"])).mean()
    # NOTE: the sample queries the same persons again and again (gamma frailty); the intervals
    # treat persons as clusters (docs/methodology.md §3b), so they keep their nominal 95%.
    # Independent-event intervals covered 1 in about 84% of these cells.
    assert 0.93 <= covered <= 0.97
