"""Unit tests of assets/themes.py: the shipped theme files, validation messages, exact filters."""

from __future__ import annotations

import copy
import datetime as dt
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import hypothesis.strategies as st
import polars as pl
import pytest
import yaml
from hypothesis import assume, given, settings

from assets.schema import AGE_BANDS, QUERY_REASONS, SEXES
from assets.paths import SAMPLE_THEMES_PATH
from assets.themes import (
    THEMES_PATH,
    HourWindow,
    MonthWindow,
    Theme,
    ThemeConfigError,
    cell_filter,
    count_rows_by_theme_filter,
    filter_population,
    filter_queries,
    flag_queries,
    group_by_row_filters,
    load_themes,
    row_filter_flags,
    theme_fingerprint,
    validate_against_teams,
)

UTC = dt.timezone.utc


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


# One row per query: id, type, export month, UTC instant, team, reason, sex, age band.
# The comment gives the Europe/Amsterdam clock time of the instant.
_QUERY_ROWS = [
    ("q01", "person", "2025-07", "2025-07-01T20:30", "AMS-C1", "verkeer", "M", "15-24"),  # 22:30 CEST
    ("q02", "person", "2025-01", "2025-01-15T20:30", "AMS-C1", "verkeer", "M", "15-24"),  # 21:30 CET
    ("q03", "plate", "2025-01", "2025-01-15T04:30", "AMS-C2", "verkeer", "M", "15-24"),  # 05:30 CET
    ("q04", "plate", "2025-07", "2025-07-01T04:30", "AMS-C2", "verkeer", "M", "15-24"),  # 06:30 CEST
    ("q05", "person", "2025-03", "2025-03-30T00:30", "AMS-W1", "identiteit", "V", "25-44"),  # 01:30 CET
    ("q06", "person", "2025-03", "2025-03-30T01:30", "AMS-W1", None, None, None),  # 03:30 CEST
    ("q07", "person", "2025-10", "2025-10-26T00:30", "AMS-W1", "verkeer", "M", "25-44"),  # 02:30 CEST
    ("q08", "person", "2025-10", "2025-10-26T01:30", "AMS-C1", None, "M", "15-24"),  # 02:30 CET
    ("q09", "plate", "2025-08", "2025-08-31T21:59", "AMS-C2", "melding", "V", "15-24"),  # 23:59 CEST
    ("q10", "plate", "2025-06", "2025-05-31T22:00", "AMS-C1", "verkeer", "M", "65+"),  # 00:00 CEST 1 June
    ("q11", "person", "2025-09", "2025-09-01T12:00", "AMS-C1", "verkeer", "M", "15-24"),  # 14:00 CEST
    ("q12", "person", "2025-02", "2025-02-10T05:00", "AMS-W1", "toezicht", "V", "45-64"),  # 06:00 CET
    ("q13", "person", "2025-02", "2025-02-10T21:00", "AMS-W1", "opsporing", "V", "0-14"),  # 22:00 CET
    ("q14", "plate", "2025-04", "2025-04-12T23:30", "AMS-C2", "verkeer", None, None),  # 01:30 CEST
]
_QUERY_SCHEMA = {
    "query_id": pl.String,
    "query_type": pl.String,
    "month": pl.String,
    "queried_at": pl.Datetime("us", "UTC"),
    "team_code": pl.String,
    "query_reason": pl.String,
    "sex": pl.String,
    "age_band": pl.String,
}


@pytest.fixture(scope="module")
def queries() -> pl.LazyFrame:
    rows = [(*row[:3], _utc(row[3]), *row[4:]) for row in _QUERY_ROWS]
    return pl.DataFrame(rows, schema=_QUERY_SCHEMA, orient="row").lazy()


@pytest.fixture(scope="module")
def shipped() -> dict[str, Theme]:
    """The themes of the synthetic sample: those of themes.yaml and one on the sample's teams."""
    return {theme.name: theme for theme in load_themes(SAMPLE_THEMES_PATH)}


def _ids(frame: pl.LazyFrame) -> list[str]:
    return frame.collect()["query_id"].to_list()


# ---------------------------------------------------------------------------------------------
# The shipped file


def test_shipped_themes_name_no_team_and_the_sample_adds_one() -> None:
    # NOTE: team codes differ per police unit: a shipped theme naming the sample's teams stopped
    # a first run on real exports (issue 14).
    shipped = load_themes(THEMES_PATH)
    assert THEMES_PATH.name == "themes.yaml" and THEMES_PATH.parent == Path(__file__).parents[2]
    assert [theme.name for theme in shipped if theme.teams is not None] == []
    sample = load_themes(SAMPLE_THEMES_PATH)
    assert [theme for theme in sample if theme.teams is None] == list(shipped)
    assert [theme.name for theme in sample if theme.teams is not None] == ["city_centre_teams"]


def test_shipped_themes_load_with_at_least_the_five_kinds(shipped: dict[str, Theme]) -> None:
    assert len(shipped) >= 5
    assert shipped["traffic_checks"].query_reasons == ("verkeer",)
    assert (shipped["young_men"].sexes, shipped["young_men"].age_bands) == (("M",), ("15-24",))
    assert shipped["night_hours"].hours == HourWindow(start=22, end=6)
    assert shipped["night_hours"].hours.hours == (22, 23, 0, 1, 2, 3, 4, 5)
    assert shipped["city_centre_teams"].teams == ("AMS-C1", "AMS-C2")
    assert shipped["summer_2025"].months == MonthWindow(first="2025-06", last="2025-08")


def test_shipped_fingerprints_are_distinct_short_hex(shipped: dict[str, Theme]) -> None:
    fingerprints = [theme_fingerprint(theme) for theme in shipped.values()]
    assert len(set(fingerprints)) == len(fingerprints)
    assert all(re.fullmatch(r"[0-9a-f]{16}", value) for value in fingerprints)


# ---------------------------------------------------------------------------------------------
# Validation messages

_VALID = {
    "version": 1,
    "themes": [
        {
            "name": "traffic_checks",
            "title": "Verkeerscontroles",
            "description": "Queries with reason verkeer.",
            "query_reasons": ["verkeer"],
        },
        {
            "name": "young_men",
            "title": "Jonge mannen",
            "description": "Men aged 15-24.",
            "sexes": ["M"],
            "age_bands": ["15-24"],
            "hours": {"start": 22, "end": 6},
            "months": {"from": "2025-06", "to": "2025-08"},
        },
    ],
}
_THEME_KEYS = (
    "'name', 'title', 'description', 'query_types', 'query_reasons', 'sexes', 'age_bands', "
    "'hours', 'teams', 'months'"
)


def _write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "themes.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def _with(theme_index: int, **changes: object) -> dict:
    document = copy.deepcopy(_VALID)
    for key, value in changes.items():
        if value is _DROP:
            del document["themes"][theme_index][key]
        else:
            document["themes"][theme_index][key] = value
    return document


_DROP = object()

_BAD_THEMES = [
    (
        _with(0, reason=["verkeer"]),
        f"theme 'traffic_checks': field 'reason': unknown key; allowed: {_THEME_KEYS}",
    ),
    (
        _with(0, query_reasons=["verkeerscontrole"]),
        "theme 'traffic_checks': field 'query_reasons': unknown value 'verkeerscontrole'; "
        "allowed: 'verkeer', 'identiteit', 'melding', 'opsporing', 'toezicht', 'overig'",
    ),
    (
        _with(1, age_bands=["18-24"]),
        "theme 'young_men': field 'age_bands': unknown value '18-24'; "
        "allowed: '0-14', '15-24', '25-44', '45-64', '65+'",
    ),
    (
        _with(1, sexes=["F"]),
        "theme 'young_men': field 'sexes': unknown value 'F'; allowed: 'M', 'V'",
    ),
    (
        _with(0, query_types=["bike"]),
        "theme 'traffic_checks': field 'query_types': unknown value 'bike'; "
        "allowed: 'person', 'plate'",
    ),
    (
        _with(1, months={"from": "2025-6", "to": "2025-08"}),
        "theme 'young_men': field 'months': 'from' must be a quoted month \"YYYY-MM\", "
        "got '2025-6'",
    ),
    (
        _with(1, months={"from": "2025-06", "to": "2025-13"}),
        "theme 'young_men': field 'months': 'to' must be a quoted month \"YYYY-MM\", "
        "got '2025-13'",
    ),
    (
        _with(1, months={"from": "2025-06\n", "to": "2025-08"}),
        "theme 'young_men': field 'months': 'from' must be a quoted month \"YYYY-MM\", "
        "got '2025-06\\n'",
    ),
    (
        _with(1, months={"from": 202506, "to": "2025-08"}),
        "theme 'young_men': field 'months': 'from' must be a quoted month \"YYYY-MM\", "
        "got 202506",
    ),
    (
        _with(1, months={"from": "2025-09", "to": "2025-08"}),
        "theme 'young_men': field 'months': 'from' 2025-09 is after 'to' 2025-08",
    ),
    (
        _with(1, months={"from": "2025-06"}),
        "theme 'young_men': field 'months': must be a mapping with exactly the keys "
        "'from' and 'to'",
    ),
    (
        _with(1, hours={"start": 22, "end": 24}),
        "theme 'young_men': field 'hours': 'end' must be a whole clock hour 0-23, got 24",
    ),
    (
        _with(1, hours={"start": True, "end": 6}),
        "theme 'young_men': field 'hours': 'start' must be a whole clock hour 0-23, got True",
    ),
    (
        _with(1, hours={"start": 6, "end": 6}),
        "theme 'young_men': field 'hours': 'start' equals 'end', which is either no hour or "
        "all 24; leave the field out to keep all hours",
    ),
    (
        _with(1, sexes=[]),
        "theme 'young_men': field 'sexes': must be a non-empty list "
        "(leave the field out to keep all values)",
    ),
    (
        _with(1, sexes=["M", "M"]),
        "theme 'young_men': field 'sexes': value 'M' is listed twice",
    ),
    (
        _with(0, teams=["AMS-C1", 7]),
        "theme 'traffic_checks': field 'teams': 7 is not a non-empty string",
    ),
    (
        _with(0, title=_DROP),
        "theme 'traffic_checks': field 'title': missing",
    ),
    (
        _with(0, description="   "),
        "theme 'traffic_checks': field 'description': must be a non-empty string",
    ),
    (
        _with(0, name="Traffic checks"),
        "theme #1: field 'name': 'Traffic checks' is not a valid name: use lower-case letters, "
        "digits and '_', starting with a letter, at most 63 characters",
    ),
    (
        _with(0, name="traffic_checks "),
        "theme #1: field 'name': 'traffic_checks ' is not a valid name: use lower-case letters, "
        "digits and '_', starting with a letter, at most 63 characters",
    ),
    (
        _with(0, query_reasons=_DROP),
        "theme 'traffic_checks': has no filter; give at least one of 'query_types', "
        "'query_reasons', 'sexes', 'age_bands', 'hours', 'teams', 'months'",
    ),
    (
        _with(1, name="traffic_checks"),
        "theme 'traffic_checks': field 'name': duplicate name; already used by theme #1",
    ),
    ({"version": 1, "themes": []}, "field 'themes': must be a non-empty list of themes"),
    ({"version": 1}, "field 'themes': must be a non-empty list of themes"),
    ({"themes": _VALID["themes"]}, "field 'version': missing (expected 1)"),
    (
        {"version": 2, "themes": _VALID["themes"]},
        "field 'version': unsupported version 2; this code reads version 1",
    ),
    (
        {**_VALID, "theme": []},
        "unknown key(s) 'theme'; allowed: 'version', 'themes'",
    ),
    ({"version": 1, "themes": ["traffic_checks"]}, "theme #1: expected a mapping"),
    (["traffic_checks"], "expected a mapping with keys 'version' and 'themes'"),
]


@pytest.mark.parametrize(("document", "message"), _BAD_THEMES)
def test_bad_config_names_file_theme_and_field(
    tmp_path: Path, document: object, message: str
) -> None:
    path = _write(tmp_path, document)
    with pytest.raises(ThemeConfigError) as caught:
        load_themes(path)
    assert str(caught.value) == f"{path}: {message}"


def test_valid_document_loads_in_canonical_order(tmp_path: Path) -> None:
    document = _with(1, sexes=["V", "M"], age_bands=["65+", "15-24"])
    document["themes"][0]["teams"] = ["AMS-C2", "AMS-C1"]
    themes = load_themes(_write(tmp_path, document))
    assert [theme.name for theme in themes] == ["traffic_checks", "young_men"]
    assert themes[1].sexes == ("M", "V") and themes[1].age_bands == ("15-24", "65+")
    assert themes[0].teams == ("AMS-C1", "AMS-C2")
    assert themes[1].hours == HourWindow(22, 6)
    assert themes[1].months == MonthWindow("2025-06", "2025-08")


def test_duplicate_yaml_key_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "themes.yaml"
    path.write_text(
        "version: 1\n"
        "themes:\n"
        "  - name: night\n"
        "    title: Night\n"
        "    description: Night hours.\n"
        "    hours: {start: 22, end: 6}\n"
        "    hours: {start: 20, end: 6}\n",
        encoding="utf-8",
    )
    with pytest.raises(ThemeConfigError) as caught:
        load_themes(path)
    assert str(caught.value) == f"{path}: line 7: invalid YAML: duplicate key 'hours'"


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ThemeConfigError) as caught:
        load_themes(path)
    assert str(caught.value) == f"{path}: cannot read the file (No such file or directory)"


def test_validate_against_teams() -> None:
    themes = load_themes(SAMPLE_THEMES_PATH)
    validate_against_teams(themes, ["AMS-C1", "AMS-C2", "AMS-W1"])  # no error
    with pytest.raises(ThemeConfigError) as caught:
        validate_against_teams(themes, ["AMS-W1", "AMS-C1", "AMS-W1"])
    assert str(caught.value) == (
        f"{SAMPLE_THEMES_PATH}: theme 'city_centre_teams': field 'teams': unknown team code(s) "
        "'AMS-C2'; known: 'AMS-C1', 'AMS-W1'"
    )
    assert caught.value.theme == "city_centre_teams" and caught.value.field == "teams"


# ---------------------------------------------------------------------------------------------
# Fingerprints


def test_fingerprint_covers_the_selection_not_the_wording() -> None:
    base = Theme(
        name="young_men",
        title="Jonge mannen",
        description="Men aged 15-24.",
        sexes=("M",),
        age_bands=("15-24",),
        hours=HourWindow(22, 6),
    )
    # NOTE: pinned so that an accidental change of the canonical form shows up here; a
    # deliberate change must bump THEMES_VERSION, which changes every fingerprint anyway.
    assert theme_fingerprint(base) == "fba34f4a11ee535d"
    reworded = Theme(**{**base.__dict__, "title": "Young men", "description": "Other words."})
    assert theme_fingerprint(reworded) == theme_fingerprint(base)
    for change in (
        {"hours": HourWindow(22, 5)},
        {"age_bands": ("15-24", "25-44")},
        {"name": "young_men_2"},
        {"months": MonthWindow("2025-01", "2025-01")},
    ):
        changed = Theme(**{**base.__dict__, **change})
        assert theme_fingerprint(changed) != theme_fingerprint(base), change


# ---------------------------------------------------------------------------------------------
# Filters on queries


@pytest.mark.parametrize(
    ("theme_name", "expected_ids"),
    [
        ("traffic_checks", ["q01", "q02", "q03", "q04", "q07", "q10", "q11", "q14"]),
        ("young_men", ["q01", "q02", "q03", "q04", "q08", "q11"]),
        # 22:00 local is in, 06:00 local is out; q01/q02 and q03/q04 share a UTC clock time
        # but fall on different sides because of daylight saving time; q08 is the repeated
        # 02:30 of the October change, q06 the 03:30 right after the March change.
        ("night_hours", ["q01", "q03", "q05", "q06", "q07", "q08", "q09", "q10", "q13", "q14"]),
        ("city_centre_teams", ["q01", "q02", "q03", "q04", "q08", "q09", "q10", "q11", "q14"]),
        ("summer_2025", ["q01", "q04", "q09", "q10"]),
        ("young_men_night_traffic", ["q01", "q03"]),
    ],
)
def test_filter_queries_exact_rows(
    queries: pl.LazyFrame, shipped: dict[str, Theme], theme_name: str, expected_ids: list[str]
) -> None:
    result = filter_queries(shipped[theme_name], queries)
    assert isinstance(result, pl.LazyFrame)
    assert _ids(result) == expected_ids
    assert result.collect_schema() == queries.collect_schema()


def test_query_types_filter(queries: pl.LazyFrame) -> None:
    theme = Theme(name="plates", title="Plates", description="Plate queries.", query_types=("plate",))
    assert _ids(filter_queries(theme, queries)) == ["q03", "q04", "q09", "q10", "q14"]


def test_hours_follow_the_amsterdam_clock_all_year() -> None:
    # Every quarter of an hour of 2025 in UTC, against Python's zoneinfo as the oracle.
    start = dt.datetime(2025, 1, 1, tzinfo=UTC)
    instants = [start + dt.timedelta(minutes=15 * step) for step in range(365 * 24 * 4)]
    amsterdam = ZoneInfo("Europe/Amsterdam")
    local_hours = [instant.astimezone(amsterdam).hour for instant in instants]
    frame = pl.DataFrame(
        {"query_id": [str(i) for i in range(len(instants))], "queried_at": instants},
        schema={"query_id": pl.String, "queried_at": pl.Datetime("us", "UTC")},
    ).lazy()

    for window, expected_count in ((HourWindow(22, 6), 365 * 8 * 4), (HourWindow(7, 9), 365 * 2 * 4)):
        theme = Theme(name="w", title="W", description="Window.", hours=window)
        kept = set(_ids(filter_queries(theme, frame)))
        expected = {str(i) for i, hour in enumerate(local_hours) if hour in window.hours}
        assert kept == expected
        # NOTE: 22-6 keeps 8 clock hours a day; the hour lost in March (02:00) and the hour
        # gained in October (02:00 twice) cancel, so the year holds exactly 365 × 8 hours.
        assert len(kept) == expected_count


def test_naive_queried_at_is_refused(queries: pl.LazyFrame, shipped: dict[str, Theme]) -> None:
    naive = queries.with_columns(pl.col("queried_at").dt.replace_time_zone(None))
    with pytest.raises(ValueError, match="queried_at must be a time-zone-aware datetime"):
        filter_queries(shipped["night_hours"], naive)
    # a theme without hours does not need the clock
    assert len(_ids(filter_queries(shipped["traffic_checks"], naive))) == 8


def test_missing_column_is_named(queries: pl.LazyFrame, shipped: dict[str, Theme]) -> None:
    with pytest.raises(ValueError, match="query table lacks column\\(s\\) 'sex'"):
        filter_queries(shipped["young_men"], queries.drop("sex"))


def test_count_rows_by_theme_filter_accounts_for_every_row(
    queries: pl.LazyFrame, shipped: dict[str, Theme]
) -> None:
    theme = shipped["young_men_night_traffic"]
    counts = count_rows_by_theme_filter(theme, queries)
    expected = pl.DataFrame(
        {
            "filter_step": [1, 2, 3, 4],
            "filter": ["query_reasons", "sexes", "age_bands", "hours"],
            "column": ["query_reason", "sex", "age_band", "queried_at"],
            "rows_in_count": [14, 8, 7, 5],
            "rows_out_count": [8, 7, 5, 2],
            "rows_dropped_count": [6, 1, 2, 3],
            "rows_dropped_null_count": [2, 1, 0, 0],
        },
        schema={
            "filter_step": pl.Int64,
            "filter": pl.String,
            "column": pl.String,
            "rows_in_count": pl.Int64,
            "rows_out_count": pl.Int64,
            "rows_dropped_count": pl.Int64,
            "rows_dropped_null_count": pl.Int64,
        },
    )
    assert counts.equals(expected)
    assert counts["rows_out_count"][-1] == filter_queries(theme, queries).collect().height


# ---------------------------------------------------------------------------------------------
# Filters on the population


@pytest.fixture(scope="module")
def population() -> pl.DataFrame:
    rows = []
    value = 100
    for team, wijk in (("AMS-C1", "WK036300"), ("AMS-W1", "WK036301")):
        for sex in SEXES:
            for age_band in ("15-24", "25-44"):
                for origin in ("NL", "MA"):
                    rows.append((2025, team, wijk, sex, age_band, origin, value))
                    value += 5
    return pl.DataFrame(
        rows,
        schema={
            "year": pl.Int64,
            "team_code": pl.String,
            "wijk_code": pl.String,
            "sex": pl.String,
            "age_band": pl.String,
            "origin": pl.String,
            "population": pl.Int64,
        },
        orient="row",
    )


def test_age_sex_theme_restricts_the_benchmark(
    population: pl.DataFrame, shipped: dict[str, Theme]
) -> None:
    result = filter_population(shipped["young_men"], population)
    assert result.height == 4
    assert set(result["sex"]) == {"M"} and set(result["age_band"]) == {"15-24"}
    # cells M × 15-24 hold 100, 105 (AMS-C1) and 140, 145 (AMS-W1)
    assert result["population"].to_list() == [100, 105, 140, 145]
    assert filter_population(shipped["young_men_night_traffic"], population).equals(result)


def test_team_theme_restricts_teams(population: pl.DataFrame, shipped: dict[str, Theme]) -> None:
    result = filter_population(shipped["city_centre_teams"], population)
    assert result.height == 8 and set(result["team_code"]) == {"AMS-C1"}
    assert result["population"].sum() == sum(range(100, 140, 5))


@pytest.mark.parametrize("theme_name", ["traffic_checks", "night_hours", "summer_2025"])
def test_query_only_themes_keep_every_resident(
    population: pl.DataFrame, shipped: dict[str, Theme], theme_name: str
) -> None:
    assert filter_population(shipped[theme_name], population).equals(population)


def test_code_lists_come_from_the_schema() -> None:
    # guard: the error messages above list the codes of assets/schema.py in this order
    assert QUERY_REASONS == ("verkeer", "identiteit", "melding", "opsporing", "toezicht", "overig")
    assert AGE_BANDS == ("0-14", "15-24", "25-44", "45-64", "65+")


def test_nesting_follows_the_filters() -> None:
    from assets.themes import HourWindow, MonthWindow, Theme, is_within, list_nested_themes

    def theme(name: str, **filters) -> Theme:
        return Theme(name=name, title=name, description=name, **filters)

    night = theme("night", hours=HourWindow(22, 6))
    late = theme("late", hours=HourWindow(23, 2), sexes=("M",))
    evening = theme("evening", hours=HourWindow(18, 23))
    traffic = theme("traffic", query_reasons=("verkeer",))
    summer = theme("summer", months=MonthWindow("2025-06", "2025-08"))
    july = theme("july", months=MonthWindow("2025-07", "2025-07"), query_reasons=("verkeer",))
    assert is_within(late, night) and not is_within(night, late)
    assert not is_within(evening, night)  # 18:00-21:59 lies outside 22-6
    assert not is_within(traffic, night)  # no hours filter: every hour
    assert is_within(july, summer) and is_within(july, traffic)
    assert not is_within(summer, july)
    assert list_nested_themes([night, late, evening, traffic, summer, july]) == [
        ("july", "summer"), ("july", "traffic"), ("late", "night")]


# ---------------------------------------------------------------------------------------------
# Themes read from persons' cells grouped once (assets.disproportionality)


def _kept_through_flags(theme: Theme, themes: list[Theme], rows: pl.LazyFrame) -> list[str]:
    """The ids a theme keeps when read from the rows flagged for `themes`, its other filters
    from categorical columns, as the persons' cells hold them."""
    flagged = flag_queries(themes, rows).with_columns(
        pl.col(pl.String).exclude("query_id").cast(pl.Categorical))
    return _ids(flagged.filter(cell_filter(theme)))


def test_shipped_themes_keep_the_same_rows_through_their_flags(
    queries: pl.LazyFrame, shipped: dict[str, Theme]
) -> None:
    themes = list(shipped.values())
    assert list(row_filter_flags(themes)) == ["_query_reasons_verkeer", "_hours_22_6"]
    for theme in themes:
        assert _kept_through_flags(theme, themes, queries) == _ids(filter_queries(theme, queries))


_MONTH_KEYS = [f"2025-{m:02d}" for m in range(1, 13)]


@st.composite
def _themes(draw: st.DrawFn) -> Theme:
    def subset(values: tuple[str, ...]) -> tuple[str, ...] | None:
        kept = draw(st.none() | st.sets(st.sampled_from(values), min_size=1))
        return None if kept is None else tuple(v for v in values if v in kept)

    # NOTE: few clock hours, so that drawn themes share a start or an end of their windows.
    hours = draw(st.none() | st.tuples(st.sampled_from((0, 6, 22)), st.sampled_from((2, 6, 19)))
                 .filter(lambda pair: pair[0] != pair[1]))
    months = draw(st.none() | st.tuples(st.sampled_from(_MONTH_KEYS),
                                        st.sampled_from(_MONTH_KEYS)).map(sorted))
    theme = Theme(
        name="drawn", title="Drawn", description="Drawn.",
        query_types=subset(("person", "plate")), query_reasons=subset(QUERY_REASONS),
        sexes=subset(SEXES), age_bands=subset(AGE_BANDS),
        hours=None if hours is None else HourWindow(*hours),
        teams=subset(("AMS-C1", "AMS-C2", "AMS-W1")),
        months=None if months is None else MonthWindow(*months),
    )
    assume(any(getattr(theme, key) is not None for key in
               ("query_types", "query_reasons", "sexes", "age_bands", "hours", "teams", "months")))
    return theme


@st.composite
def _query_rows(draw: st.DrawFn) -> pl.LazyFrame:
    def maybe(values: tuple[str, ...]) -> st.SearchStrategy[str | None]:
        return st.none() | st.sampled_from(values)

    row = st.tuples(
        st.sampled_from(("person", "plate")), st.sampled_from(_MONTH_KEYS),
        st.datetimes(dt.datetime(2024, 12, 31), dt.datetime(2026, 1, 1)),
        st.sampled_from(("AMS-C1", "AMS-C2", "AMS-W1")), maybe(QUERY_REASONS), maybe(SEXES),
        maybe(AGE_BANDS))
    rows = draw(st.lists(row, max_size=40))
    return pl.DataFrame(
        [(f"q{i}", kind, month, instant.replace(tzinfo=UTC), *rest)
         for i, (kind, month, instant, *rest) in enumerate(rows)],
        schema=_QUERY_SCHEMA, orient="row").lazy()


@settings(max_examples=150, deadline=None)
@given(theme=_themes(), others=st.lists(_themes(), max_size=3), rows=_query_rows())
def test_a_theme_keeps_the_same_rows_through_flags_made_for_any_group_and_its_scan(
    theme: Theme, others: list[Theme], rows: pl.LazyFrame
) -> None:
    themes = [*others, theme]
    assert _kept_through_flags(theme, themes, rows) == _ids(filter_queries(theme, rows))
    # the rows one scan for all of them reads: every row some theme keeps, in the rows' order
    kept_by_some = set().union(*(_ids(filter_queries(one, rows)) for one in themes))
    assert _ids(flag_queries(themes, rows)) == [row for row in _ids(rows) if row in kept_by_some]


def test_themes_are_grouped_under_the_most_flags_in_file_order() -> None:
    def theme(name: str, **filters) -> Theme:
        return Theme(name=name, title=name, description=name, **filters)

    traffic = theme("traffic", query_reasons=("verkeer",))
    night = theme("night", hours=HourWindow(22, 6))
    night_traffic = theme("night_traffic", query_reasons=("verkeer",), hours=HourWindow(22, 6),
                          sexes=("M",))
    reports = theme("reports", query_reasons=("melding",))
    day = theme("day", hours=HourWindow(7, 19))
    young = theme("young", age_bands=("15-24",))
    themes = [traffic, night, night_traffic, reports, day, young]

    groups = group_by_row_filters(themes, most=2)
    assert [[t.name for t in group] for group in groups] == [
        ["traffic", "night", "night_traffic", "young"], ["reports", "day"]]
    assert all(len(row_filter_flags(group)) <= 2 for group in groups)
    # one flag a scan: one group per distinct row filter, a theme with two alone
    assert [[t.name for t in group] for group in group_by_row_filters(themes, most=1)] == [
        ["traffic", "young"], ["night"], ["night_traffic"], ["reports"], ["day"]]
