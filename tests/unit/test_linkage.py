"""Core tables: CBS deliveries refused whole when broken, queries linked and never dropped."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import polars as pl
import pytest

from assets.frames import InputError
from assets.linkage import (
    build_core_persons,
    build_core_population,
    build_core_team_areas,
    key_expr,
    link_queries,
)
from assets.schema import PERSONS

TEAMS = pl.DataFrame({"team_code": ["T1", "T2"], "team_name": ["a", "b"],
                      "wijk_code": ["WK0363AA", "WK0363AB"]})


def pseudo(i: int) -> str:
    return f"{i:016x}" + "0" * 48


def persons(**overrides) -> pl.DataFrame:
    data = {"pseudonym": [pseudo(1), pseudo(2)], "sex": ["M", "V"], "birth_year": [2000, 1960],
            "origin": ["MA", "NL"], "generation": [2, None],
            "residence_wijk": ["WK0363AB", None]}
    return pl.DataFrame({**data, **overrides}, schema=PERSONS)


def test_key_is_the_first_16_hex_digits():
    keys = pl.DataFrame({"p": [pseudo(255), "f" * 64]}).select(key_expr("p"))["p"].to_list()
    assert keys == [255, 2**64 - 1]


def test_persons_get_keys_groups_and_residence_team():
    core = build_core_persons(persons(), TEAMS, current_year=2026)
    assert core["person_key"].to_list() == [1, 2]
    assert core["origin_group"].to_list() == ["Buiten Europa", "Nederland"]
    assert core["residence_team"].to_list() == ["T2", None]


@pytest.mark.parametrize(("overrides", "rule"), [
    ({"pseudonym": [pseudo(1), pseudo(1)]}, "pseudonym unique: 2 row(s)"),
    ({"sex": ["M", "X"]}, "sex in M/V: 1 row(s)"),
    ({"origin": ["MA", "westers"]}, "origin is a CBS 2022 origin code: 1 row(s)"),
    ({"birth_year": [1850, 1960]}, "birth_year in 1900..2026: 1 row(s)"),
])
def test_broken_persons_are_refused_with_counts(overrides, rule):
    with pytest.raises(InputError, match=re.escape(rule)) as error:
        build_core_persons(persons(**overrides), TEAMS, current_year=2026,
                           source="landing/cbs/persons.parquet")
    message = str(error.value)
    assert message.startswith("landing/cbs/persons.parquet: ")  # names the file
    for value in ("westers", "1850", pseudo(1)):  # never a value of the person table
        assert value not in message


def test_surrogate_collisions_are_refused():
    twins = persons(pseudonym=[pseudo(1), pseudo(1)[:16] + "1" * 48])
    with pytest.raises(InputError, match="collision"):
        build_core_persons(twins, TEAMS, current_year=2026)


def test_team_areas_refuse_a_wijk_in_two_teams():
    with pytest.raises(InputError, match="exactly one team: 2 row"):
        build_core_team_areas(TEAMS.with_columns(wijk_code=pl.lit("WK0363AA")))


def population(wijken) -> pl.DataFrame:
    return pl.DataFrame({"year": 2024, "wijk_code": wijken, "sex": "M", "age_band": "15-24",
                         "origin": "NL", "population": 10})


def test_population_needs_every_team_wijk_and_no_other():
    assert build_core_population(population(["WK0363AA", "WK0363AB"]), TEAMS)["team_code"].to_list() == ["T1", "T2"]
    with pytest.raises(InputError, match="no rows for 1 wijk"):
        build_core_population(population(["WK0363AA"]), TEAMS)
    with pytest.raises(InputError, match="1 wijk.* not in team_areas"):
        build_core_population(population(["WK0363AA", "WK0363AB", "WK0363ZZ"]), TEAMS)


def test_queries_are_linked_and_unlinked_ones_kept():
    core = build_core_persons(persons(), TEAMS, current_year=2026)
    valid = pl.DataFrame({
        "query_id": ["a", "b", "c"],
        "queried_at": [datetime(2025, 6, 1, tzinfo=UTC)] * 3,
        "team_code": ["T1"] * 3, "officer_pseudonym": [pseudo(9)] * 3,
        "subject_pseudonym": [pseudo(1), None, pseudo(7)],
        "query_reason": [None] * 3, "buurt_code": [None] * 3, "hit": [None] * 3,
    }, schema_overrides={"query_reason": pl.String, "buurt_code": pl.String, "hit": pl.Boolean})
    linked = link_queries(valid, core, query_type="person", month="2025-06")
    assert linked.height == 3
    assert linked["is_linked"].to_list() == [True, False, False]
    assert linked["age_band"].to_list() == ["25-44", None, None]  # 2025 - 2000 = 25
    assert linked["residence_team"].to_list() == ["T2", None, None]
