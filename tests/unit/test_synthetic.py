"""The built-in sample: real CBS totals, the DESIGN.md §4 contract, deterministic by seed."""

from __future__ import annotations

import json

import polars as pl
import pytest

from assets import frames
from assets.synthetic import (
    TEAMS,
    SampleSpec,
    build_population_cells,
    build_team_areas,
    generate_sample,
    read_wijken,
)

TINY = SampleSpec(seed=3, months=2, person_queries=3_000, plate_queries=2_000)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    generate_sample(out, TINY)
    return out


def test_real_wijk_totals_and_sex_split_are_kept():
    wijken = read_wijken()
    assert wijken.height == 110
    # NOTE: CBS rounds wijk counts at random, so they add up to about the city total.
    assert abs(wijken["residents"].sum() - 931_298) < 500
    cells = build_population_cells(wijken)
    per_wijk = cells.group_by("wijk_code").agg(pl.col("population").sum()).join(wijken, on="wijk_code")
    assert (per_wijk["population"] == per_wijk["residents"]).all()
    men = cells.filter(sex="M")["population"].sum()
    assert abs(men - wijken["men"].sum()) / wijken["men"].sum() < 0.001


def test_minority_origins_are_younger():
    cells = build_population_cells(read_wijken())
    young = cells.filter(pl.col("age_band").is_in(["0-14", "15-24"])).group_by("origin").agg(
        pl.col("population").sum()).join(cells.group_by("origin").agg(total=pl.col("population").sum()),
                                         on="origin").with_columns(share=pl.col("population") / pl.col("total"))
    shares = dict(young.select("origin", "share").iter_rows())
    assert shares["MA"] > shares["NL"] + 0.1


def test_every_wijk_has_one_of_13_illustrative_teams():
    areas = build_team_areas(read_wijken())
    assert areas["wijk_code"].is_unique().all() and areas.height == 110
    assert set(areas["team_code"]) == set(TEAMS) and len(TEAMS) == 13
    assert areas["team_name"].str.contains("illustratief").all()


def test_sample_follows_the_contract(tiny):
    assert frames.list_months(tiny) == ["2025-01", "2025-02"]
    for query_type in ("person", "plate"):
        for month in ("2025-01", "2025-02"):
            frames.read_query_month(tiny, query_type, month)
    frames.read_persons(tiny)
    frames.read_population(tiny)
    frames.read_team_areas(tiny)
    population = pl.read_parquet(tiny / "cbs" / "population.parquet")
    assert (population["population"] % 5 == 0).all()
    truth = json.loads((tiny / "truth.json").read_text())
    assert truth["synthetic"] is True and truth["spec"]["true_ratios"]["MA"] == 1.9


def test_same_seed_same_bytes(tiny, tmp_path):
    generate_sample(tmp_path, TINY)
    for path in sorted(p for p in tiny.rglob("*") if p.is_file()):
        assert (tmp_path / path.relative_to(tiny)).read_bytes() == path.read_bytes(), path.name
