"""Core tables: team areas, CBS persons and population checked and keyed, queries linked to persons.

Pseudonyms are 64-hex strings; joins on them at national volume cost 3–4× the time and 3× the
memory of integer joins (FACTS.md), so core tables carry a stable UInt64 surrogate (the first 16
hex digits), collision-checked against the persons table.
"""

from __future__ import annotations

import polars as pl

from assets.frames import InputError, StopcheckError
from assets.schema import (
    AGE_BANDS,
    ORIGIN_CODES,
    PSEUDONYM_PATTERN,
    SEXES,
    SUBJECT_COLUMN,
    TIMEZONE,
    WIJK_PATTERN,
    age_band_expr,
    origin_group_expr,
)

CORE_QUERY_COLUMNS = (
    "query_id", "query_type", "month", "queried_at", "team_code", "officer_key", "person_key",
    "plate_key", "is_linked", "query_reason", "buurt_code", "hit", "sex", "age_band", "origin",
    "origin_group", "residence_wijk", "residence_team",
)


def key_expr(column: str) -> pl.Expr:
    """Stable UInt64 surrogate of a 64-hex pseudonym: its first 16 hex digits.

    NOTE: polars' Expr.hash() is not stable across versions, so it is never persisted.
    """
    return pl.col(column).str.slice(0, 16).str.to_integer(base=16, dtype=pl.UInt64, strict=False)


def _require(frame: pl.DataFrame, name: str, checks: dict[str, pl.Expr]) -> None:
    """Raise InputError naming every broken rule of a reference table with its row count."""
    counts = frame.select(
        [expr.fill_null(True).sum().alias(rule) for rule, expr in checks.items()]
    ).row(0, named=True)
    broken = [f"{rule}: {n} row(s)" for rule, n in counts.items() if n]
    if broken:
        raise InputError(f"{name}: " + "; ".join(broken))


def build_core_team_areas(team_areas: pl.DataFrame, *,
                          source: str = "reference/team_areas.csv") -> pl.DataFrame:
    """One row per wijk: the team covering it. Refuses duplicates, nulls and bad wijk codes.
    Errors name `source`, the file the table was read from."""
    _require(team_areas, source, {
        "team_code not null": pl.col("team_code").is_null(),
        "wijk_code is a CBS wijk code": ~pl.col("wijk_code").str.contains(WIJK_PATTERN),
        "each wijk belongs to exactly one team": pl.col("wijk_code").is_duplicated(),
    })
    if team_areas.height == 0:
        raise InputError(f"{source}: no rows")
    return team_areas.sort("wijk_code")


def build_core_persons(persons: pl.DataFrame, team_areas: pl.DataFrame,
                       *, current_year: int, source: str = "cbs/persons") -> pl.DataFrame:
    """One row per pseudonymised person: CBS attributes, surrogate key and residence team.

    A CBS delivery that breaks the contract is refused as a whole (counts per rule, no values):
    silently unlinking some persons would bias every ratio. Errors name `source`, the file the
    table was read from.
    """
    _require(persons, source, {
        "pseudonym is 64 lowercase hex": ~pl.col("pseudonym").str.contains(PSEUDONYM_PATTERN),
        "pseudonym unique": pl.col("pseudonym").is_duplicated(),
        "sex in M/V": ~pl.col("sex").is_in(list(SEXES)),
        f"birth_year in 1900..{current_year}": ~pl.col("birth_year").is_between(1900, current_year),
        "origin is a CBS 2022 origin code": ~pl.col("origin").is_in(list(ORIGIN_CODES)),
        "generation in 1, 2 or null": ~pl.col("generation").is_in([1, 2]).fill_null(True),
        "residence_wijk is a wijk code or null":
            ~pl.col("residence_wijk").str.contains(WIJK_PATTERN).fill_null(True),
    })
    core = persons.with_columns(person_key=key_expr("pseudonym")).join(
        team_areas.select(residence_wijk="wijk_code", residence_team="team_code"),
        on="residence_wijk", how="left",
    )
    collisions = core.height - core["person_key"].n_unique()
    if collisions:
        raise InputError(f"{source}: {collisions} surrogate key collision(s); widen key_expr")
    return core.with_columns(origin_group=origin_group_expr(pl.col("origin"))).select(
        "pseudonym", "person_key", "sex", "birth_year", "origin", "origin_group", "generation",
        "residence_wijk", "residence_team",
    ).sort("person_key")


def build_core_population(population: pl.DataFrame, team_areas: pl.DataFrame, *,
                          source: str = "cbs/population") -> pl.DataFrame:
    """One row per year × team × wijk × sex × age band × origin: residents on 1 January.

    Every wijk of team_areas needs population rows and every population wijk a team: a missing
    denominator is an error, never a silent zero. Errors name `source`, the file the table was
    read from.
    """
    _require(population, source, {
        "population >= 0": pl.col("population") < 0,
        "sex in M/V": ~pl.col("sex").is_in(list(SEXES)),
        "age_band is a CBS band": ~pl.col("age_band").is_in(list(AGE_BANDS)),
        "origin is a CBS 2022 origin code": ~pl.col("origin").is_in(list(ORIGIN_CODES)),
        "one row per year, wijk, sex, age band, origin":
            pl.struct("year", "wijk_code", "sex", "age_band", "origin").is_duplicated(),
    })
    core = population.join(team_areas.select("wijk_code", "team_code"), on="wijk_code", how="left")
    no_team = core.filter(pl.col("team_code").is_null())["wijk_code"].n_unique()
    if no_team:
        raise InputError(f"{source}: {no_team} wijk(en) not in team_areas.csv")
    missing = team_areas.join(population.select("wijk_code").unique(), on="wijk_code", how="anti")
    if missing.height:
        raise InputError(f"{source}: no rows for {missing.height} wijk(en) of team_areas.csv")
    return core.select(
        "year", "team_code", "wijk_code", "sex", "age_band", "origin", "population"
    ).sort("year", "team_code", "wijk_code", "sex", "age_band", "origin")


def link_queries(valid: pl.DataFrame, persons: pl.DataFrame, *, query_type: str,
                 month: str) -> pl.DataFrame:
    """One row per valid query of one month, with the CBS attributes of its subject or holder.

    A query whose subject/holder is null, or whose pseudonym is not in persons, stays in the
    table with is_linked false and null attributes: it is counted, never dropped.
    """
    subject = SUBJECT_COLUMN[query_type]
    attributes = persons.select(
        "person_key", "sex", "birth_year", "origin", "origin_group", "residence_wijk",
        "residence_team", is_linked=pl.lit(True),
    )
    linked = (
        valid.with_columns(
            query_type=pl.lit(query_type),
            month=pl.lit(month),
            officer_key=key_expr("officer_pseudonym"),
            person_key=key_expr(subject),
            plate_key=key_expr("plate_pseudonym") if query_type == "plate"
            else pl.lit(None, pl.UInt64),
        )
        .join(attributes, on="person_key", how="left")
        # NOTE: lazy after the join (an eager join: the lazy one took three times as long on a
        # 4.2M-row month). Lazily polars computes the age once for the four comparisons of
        # `age_band_expr` (eagerly the time-zone conversion ran once per band) and the columns
        # side by side: 2.09 → 0.83 s on that month.
        .lazy()
        .with_columns(
            is_linked=pl.col("is_linked").fill_null(False),
            # NOTE: CBS gives birth year only, so age is the age reached in the query's year.
            age_band=pl.when(pl.col("birth_year").is_not_null()).then(age_band_expr(
                pl.col("queried_at").dt.convert_time_zone(TIMEZONE).dt.year()
                - pl.col("birth_year"))),
        )
        .select(CORE_QUERY_COLUMNS)
        .collect()
    )
    if linked.height != valid.height:
        raise StopcheckError(f"{query_type} {month}: linkage changed the row count")
    return linked
