"""The team tables from one read of the persons' cells (assets.team_tables)."""

from __future__ import annotations

import pytest
from polars.testing import assert_frame_equal

import assets.team_tables as team_tables
from assets.disproportionality import (AnalysisSettings, compute_count_models,
                                       compute_team_disproportionality)
from assets.panels import PanelSpec, simulate_panel
from assets.trends import compute_team_trends


@pytest.mark.parametrize("threads", [1, 2])
def test_team_tables_come_in_order_and_equal_each_computed_alone(monkeypatch, threads):
    # NOTE: side by side or one at a time, each table is the one its own function gives, and
    # the names may come as any iterable (the asset passes Dagster's selected outputs).
    monkeypatch.setattr(team_tables, "side_by_side", lambda rows: threads)
    panel = simulate_panel(PanelSpec(seed=5, queries_per_year=5_000))
    queries, months, settings = panel.queries.lazy(), panel.spec.month_keys(), AnalysisSettings()
    args = dict(months=months, settings=settings)
    tables = list(team_tables.compute_team_tables(
        queries, panel.population, names=iter(["out_team_trends", "out_count_models",
                                                "out_team_disproportionality"]), **args))
    assert [name for name, _ in tables] == list(team_tables.TEAM_TABLE_NAMES)
    alone = {"out_count_models": compute_count_models(queries, panel.population, **args),
             "out_team_disproportionality": compute_team_disproportionality(
                 queries, panel.population, **args),
             "out_team_trends": compute_team_trends(queries, panel.population, **args)}
    for name, table in tables:
        assert table.height > 0, name
        assert_frame_equal(table, alone[name], check_exact=True)
    only = list(team_tables.compute_team_tables(queries, panel.population,
                                                names={"out_count_models"}, **args))
    assert [name for name, _ in only] == ["out_count_models"]
