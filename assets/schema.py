"""The input and output contract of ../DESIGN.md §4–5 as polars schemas and code lists.

Pure and Dagster-free: every other module, the notebooks and the tests take column names,
types and code lists from here, so the contract is written down exactly once.
"""

from __future__ import annotations

from datetime import UTC, datetime
import re
from zoneinfo import ZoneInfo

import polars as pl

TIMEZONE = "Europe/Amsterdam"
"""Local time of the landing zone's months, of schedules and of the veil-of-darkness clock."""

PSEUDONYM_PATTERN = r"^[0-9a-f]{64}$"
WIJK_PATTERN = r"^WK0363[0-9A-Z]{2}$"
BUURT_PATTERN = r"^BU0363[0-9A-Z]{4}$"
MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"

QUERY_TYPES = ("person", "plate")
QUERY_REASONS = ("verkeer", "identiteit", "melding", "opsporing", "toezicht", "overig")
SEXES = ("M", "V")
AGE_BANDS = ("0-14", "15-24", "25-44", "45-64", "65+")
AGE_BAND_LOWER = (0, 15, 25, 45, 65)

# NOTE: CBS 2022 "herkomstland" classification. The older westers/niet-westers split does not
# map one to one onto it (Turkey, Indonesia and Japan change sides), so it is never derived.
ORIGINS: dict[str, tuple[str, str]] = {
    "NL": ("Nederland", "Nederland"),
    "EU": ("Europa (exclusief Nederland)", "Europa (exclusief Nederland)"),
    "TR": ("Turkije", "Buiten Europa"),
    "MA": ("Marokko", "Buiten Europa"),
    "SR": ("Suriname", "Buiten Europa"),
    "CW": ("Nederlandse Cariben", "Buiten Europa"),
    "ID": ("Indonesië", "Buiten Europa"),
    "AF": ("Overig Afrika", "Buiten Europa"),
    "AS": ("Overig Azië", "Buiten Europa"),
    "AM": ("Overig Amerika en Oceanië", "Buiten Europa"),
}
ORIGIN_CODES = tuple(ORIGINS)
ORIGIN_GROUPS = ("Nederland", "Europa (exclusief Nederland)", "Buiten Europa")
ALL_TEAMS = "ALL"
"""team_code of rows that cover the whole area."""

_QUERY_COMMON: dict[str, pl.DataType] = {
    "query_id": pl.String(),
    "queried_at": pl.Datetime("us", "UTC"),
    "team_code": pl.String(),
    "officer_pseudonym": pl.String(),
}
_QUERY_TAIL: dict[str, pl.DataType] = {
    "query_reason": pl.String(),
    "buurt_code": pl.String(),
    "hit": pl.Boolean(),
}

PERSON_QUERIES = pl.Schema(
    {**_QUERY_COMMON, "subject_pseudonym": pl.String(), **_QUERY_TAIL}
)
"""One row per MEOS person query (DESIGN.md §4)."""

PLATE_QUERIES = pl.Schema(
    {
        **_QUERY_COMMON,
        "plate_pseudonym": pl.String(),
        "holder_pseudonym": pl.String(),
        **_QUERY_TAIL,
    }
)
"""One row per MEOS licence-plate query (DESIGN.md §4)."""

QUERY_SCHEMAS = {"person": PERSON_QUERIES, "plate": PLATE_QUERIES}
SUBJECT_COLUMN = {"person": "subject_pseudonym", "plate": "holder_pseudonym"}
"""The column that links a query to a CBS person, per query type."""

PERSONS = pl.Schema(
    {
        "pseudonym": pl.String(),
        "sex": pl.String(),
        "birth_year": pl.Int64(),
        "origin": pl.String(),
        "generation": pl.Int64(),
        "residence_wijk": pl.String(),
    }
)
"""One row per pseudonymised person, CBS-linked attributes (DESIGN.md §4)."""

POPULATION = pl.Schema(
    {
        "year": pl.Int64(),
        "wijk_code": pl.String(),
        "sex": pl.String(),
        "age_band": pl.String(),
        "origin": pl.String(),
        "population": pl.Int64(),
    }
)
"""One row per year × wijk × sex × age band × origin: residents on 1 January (DESIGN.md §4)."""

TEAM_AREAS = pl.Schema(
    {"team_code": pl.String(), "team_name": pl.String(), "wijk_code": pl.String()}
)
"""One row per wijk: the basisteam that covers it (DESIGN.md §4)."""

PSEUDONYM_COLUMNS = {
    "person": ("officer_pseudonym", "subject_pseudonym"),
    "plate": ("officer_pseudonym", "plate_pseudonym", "holder_pseudonym"),
}
ID_COLUMNS = ("query_id",)
"""Supplier-made ids of the query tables: not pseudonyms, but a whole value of eight digits in one
is read as a BSN that lost its leading zero (assets.identifiers)."""


def age_band_expr(age: pl.Expr) -> pl.Expr:
    """Map an integer age in years to the CBS age band label of AGE_BANDS."""
    return (
        pl.when(age < 15)
        .then(pl.lit("0-14"))
        .when(age < 25)
        .then(pl.lit("15-24"))
        .when(age < 45)
        .then(pl.lit("25-44"))
        .when(age < 65)
        .then(pl.lit("45-64"))
        .otherwise(pl.lit("65+"))
    )


def origin_group_expr(origin: pl.Expr) -> pl.Expr:
    """Map an origin code to its coarse group label (the `group` column of DESIGN.md §4)."""
    return origin.replace_strict({code: group for code, (_, group) in ORIGINS.items()})


def month_bounds_utc(month: str) -> tuple[datetime, datetime]:
    """[start, end) of a "YYYY-MM" export month in Europe/Amsterdam time, as UTC instants.

    >>> month_bounds_utc("2025-03")[0].isoformat()
    '2025-02-28T23:00:00+00:00'
    """
    if not re.fullmatch(MONTH_PATTERN, month):
        raise ValueError(f"not a month key 'YYYY-MM': {month!r}")
    year, number = int(month[:4]), int(month[5:7])
    zone = ZoneInfo(TIMEZONE)
    start = datetime(year, number, 1, tzinfo=zone)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)
