"""Change over time per team (issue 13, METHODS.md §8c) on simulated 12-month panels: a step
change injected from Q3 in two team × origin cells (one halves, one doubles) is found with the
right sign and an interval that excludes 1; over replicates the change intervals cover the true
change, and for constant cells contain 1 at about the nominal rate, although the same people are
queried in both quarters (gamma frailty, shape 0.3)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from assets.disproportionality import compute_team_disproportionality
from assets.panels import PanelSpec, simulate_panel
from assets.schema import ALL_TEAMS
from assets.trends import TREND_SCHEMA, compute_team_trends

STEPS = {("T01", "MA"): ("2025-07", 0.5), ("T03", "TR"): ("2025-07", 2.0)}
SPEC = PanelSpec(seed=3, queries_per_year=200_000, residents_per_team=(15_000, 60_000),
                 step_changes=STEPS)


def _resident_changes(panel) -> pl.DataFrame:
    trends = compute_team_trends(panel.queries.lazy(), panel.population,
                                 months=panel.spec.month_keys())
    return trends.filter(query_type="person", benchmark="resident_only",
                         comparison="quarter_vs_first").filter(pl.col("team_code") != ALL_TEAMS)


@pytest.fixture(scope="module")
def panel():
    return simulate_panel(SPEC)


@pytest.fixture(scope="module")
def trends(panel) -> pl.DataFrame:
    return compute_team_trends(panel.queries.lazy(), panel.population,
                               months=panel.spec.month_keys())


def test_layout(trends):
    assert trends.schema == TREND_SCHEMA
    assert set(trends["comparison"]) == {"quarter_vs_first", "trend_per_year"}  # one year only
    first = trends.filter(comparison="quarter_vs_first")
    assert set(first["period_from"]) == {"2025-Q1"} and set(first["period_to"]) == {"2025-Q4"}
    assert trends.filter(pl.col("p_value").is_not_null())["q_value"].null_count() == 0
    assert set(trends["interval_method"]) == {"person_clustered"}


def test_injected_step_changes_are_found_with_the_right_sign(trends):
    for (team, origin), (_, factor) in STEPS.items():
        for comparison in ("quarter_vs_first", "trend_per_year"):
            row = trends.filter(query_type="person", benchmark="resident_only", team_code=team,
                                origin=origin, comparison=comparison).row(0, named=True)
            if factor < 1:
                assert row["change_ci_high"] < 1, (team, origin, comparison)
            else:
                assert row["change_ci_low"] > 1, (team, origin, comparison)


def test_change_is_the_ratio_of_the_quarterly_standardised_ratios(panel, trends):
    table = compute_team_disproportionality(panel.queries.lazy(), panel.population,
                                            months=panel.spec.month_keys())
    cell = dict(query_type="person", benchmark="team_residents", team_code="T05", origin="SR")
    q1, q4 = (table.filter(period=p, **cell)["std_ratio"].item() for p in ("2025-Q1", "2025-Q4"))
    change = trends.filter(comparison="quarter_vs_first", **cell)["change_ratio"].item()
    assert change == pytest.approx(q4 / q1, rel=1e-9)


def test_change_intervals_cover_the_truth_over_replicates():
    # 10 panels × 13 teams × 9 origins: constant cells should contain 1 about 95% of the time,
    # the stepped ones their factor.
    covered, constant = [], []
    for replicate in range(10):
        panel = simulate_panel(SPEC.with_seed(100 + replicate))
        changes = _resident_changes(panel).filter(pl.col("change_ratio").is_not_null())
        truth = changes.select(
            "team_code", "origin",
            true=pl.struct("team_code", "origin").map_elements(
                lambda c: STEPS.get((c["team_code"], c["origin"]), (None, 1.0))[1],
                return_dtype=pl.Float64))
        joined = changes.join(truth, on=["team_code", "origin"])
        hit = (joined["change_ci_low"] <= joined["true"]) & (joined["true"] <= joined["change_ci_high"])
        covered.append(hit.to_numpy())
        constant.append(hit.filter(joined["true"] == 1.0).to_numpy())
    assert np.concatenate(covered).size >= 1_000
    assert 0.93 <= np.concatenate(covered).mean() <= 0.97
    assert 0.93 <= np.concatenate(constant).mean() <= 0.97


def test_fewer_than_two_complete_quarters_give_an_empty_table():
    panel = simulate_panel(PanelSpec(months=5, queries_per_year=20_000))
    trends = compute_team_trends(panel.queries.lazy(), panel.population,
                                 months=panel.spec.month_keys())
    assert trends.is_empty() and trends.schema == TREND_SCHEMA
