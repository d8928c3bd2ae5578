"""Thematic analyses: named slices of the query data, read from the versioned ``themes.yaml``.

A theme is a slice that police and ministry want examined on its own — a query reason
(traffic checks), an age-sex group (young men 15-24), night hours, a set of teams, a window
of months — and the pipeline repeats the disproportionality statistics on that slice
(DESIGN.md §1, point 5). The themes live in ``themes.yaml`` at the top of the repository so
that every change to them is reviewed and versioned with the code.

Pure and Dagster-free: the pipeline, the notebooks and the tests call the same functions.

File format (``version: 1``)::

    version: 1
    themes:
      - name: traffic_checks          # unique, lower-case snake_case (usable as a Dagster key)
        title: Verkeerscontroles
        description: Queries registered with query reason 'verkeer'.
        query_reasons: [verkeer]      # every filter is optional; a theme needs at least one
        # query_types: [person, plate]
        # sexes: [M]
        # age_bands: ["15-24"]
        # hours: {start: 22, end: 6}  # local clock hours, start inclusive, end exclusive
        # teams: [AMS-C1, AMS-C2]
        # months: {from: "2025-06", to: "2025-08"}   # export months, both inclusive

Filters combine with AND; values inside one filter combine with OR. A filter that is left
out keeps every row. A query whose filtered column is null (no query reason recorded, or a
person not linked to CBS so that sex and age band are unknown) never matches a filter on that
column: :func:`count_rows_by_theme_filter` reports how many rows each filter drops for that
reason, so a report can say how much of a theme is unknown rather than absent.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from assets.frames import ConfigError
from assets.schema import AGE_BANDS, MONTH_PATTERN, QUERY_REASONS, QUERY_TYPES, SEXES, TIMEZONE

THEMES_VERSION = 1
"""The ``version`` of themes.yaml this module reads."""

THEMES_PATH = Path(__file__).resolve().parents[1] / "themes.yaml"
"""The shipped theme file at the top of the repository."""

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
"""A theme name: lower-case snake_case, so it is valid as a Dagster key, file stem and column value."""

_FILTER_FIELDS = ("query_types", "query_reasons", "sexes", "age_bands", "hours", "teams", "months")
_TEXT_FIELDS = ("name", "title", "description")
_ALLOWED_THEME_KEYS = _TEXT_FIELDS + _FILTER_FIELDS
_ALLOWED_TOP_KEYS = ("version", "themes")
_CODE_LISTS: dict[str, tuple[str, ...]] = {
    "query_types": QUERY_TYPES,
    "query_reasons": QUERY_REASONS,
    "sexes": SEXES,
    "age_bands": AGE_BANDS,
}


class ThemeConfigError(ConfigError, ValueError):
    """A theme file that cannot be used, naming the file, the theme and the field.

    The message reads ``<file>: theme '<name>': field '<field>': <problem>``; parts that do
    not apply (a problem with the whole file) are left out.
    """

    def __init__(
        self, source: str, problem: str, *, theme: str | None = None, field: str | None = None
    ) -> None:
        self.source = source
        self.theme = theme
        self.field = field
        self.problem = problem
        parts = [source]
        if theme is not None:
            parts.append(f"theme {theme}" if theme.startswith("#") else f"theme '{theme}'")
        if field is not None:
            parts.append(f"field '{field}'")
        parts.append(problem)
        super().__init__(": ".join(parts))


@dataclass(frozen=True)
class HourWindow:
    """Local clock hours (Europe/Amsterdam) ``start`` (inclusive) to ``end`` (exclusive).

    ``start > end`` wraps midnight: ``HourWindow(22, 6)`` keeps 22:00-05:59 local time.
    """

    start: int
    end: int

    @property
    def hours(self) -> tuple[int, ...]:
        """The local clock hours (0-23) inside the window, in clock order."""
        if self.start < self.end:
            return tuple(range(self.start, self.end))
        return tuple(range(self.start, 24)) + tuple(range(0, self.end))


@dataclass(frozen=True)
class MonthWindow:
    """Export months ``first`` to ``last`` ("YYYY-MM"), both inclusive."""

    first: str
    last: str


@dataclass(frozen=True)
class Theme:
    """One thematic analysis: a named slice of the query data.

    Every filter is ``None`` when the theme does not restrict that column. Code lists are
    stored in the canonical order of assets/schema.py (teams sorted), so two files that list
    the same values in another order define the same theme.
    """

    name: str
    title: str
    description: str
    query_types: tuple[str, ...] | None = None
    query_reasons: tuple[str, ...] | None = None
    sexes: tuple[str, ...] | None = None
    age_bands: tuple[str, ...] | None = None
    hours: HourWindow | None = None
    teams: tuple[str, ...] | None = None
    months: MonthWindow | None = None
    source: str = field(default="themes.yaml", compare=False)
    """The file the theme was read from; named in error messages, not part of the definition."""

    @property
    def is_age_sex_theme(self) -> bool:
        """True when the theme restricts sex or age band (and so the resident benchmark)."""
        return self.sexes is not None or self.age_bands is not None


# ---------------------------------------------------------------------------------------------
# Loading and validation


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML safe loader that refuses a key given twice in one mapping."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict:
    # NOTE: plain YAML keeps the last of two equal keys silently; in a reviewed config a
    # repeated `hours:` is a mistake, so it is refused with its line number.
    loader.flatten_mapping(node)
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}'", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


def load_themes(path: str | os.PathLike[str] = THEMES_PATH) -> tuple[Theme, ...]:
    """Read and validate a theme file; return its themes in file order.

    Parameters
    ----------
    path
        The theme file (default: the shipped ``themes.yaml``).

    Returns
    -------
    tuple of Theme
        One frozen :class:`Theme` per entry, in the order of the file.

    Raises
    ------
    ThemeConfigError
        On the first problem found, naming the file, the theme and the field: unknown keys,
        codes not in assets/schema.py, a bad month or hour, an empty or reversed window,
        duplicate theme names, an empty theme list, an unsupported ``version``. Team codes
        come from data and are checked later by :func:`validate_against_teams`.
    """
    source = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ThemeConfigError(source, f"cannot read the file ({error.strerror})") from None
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ThemeConfigError(source, f"{where}invalid YAML: {problem}") from None
    return parse_themes(document, source=source)


def parse_themes(document: Any, *, source: str = "themes.yaml") -> tuple[Theme, ...]:
    """Validate an already parsed theme document (the mapping ``load_themes`` reads).

    ``source`` names the origin in error messages. See :func:`load_themes` for the rules.
    """
    if not isinstance(document, Mapping):
        raise ThemeConfigError(source, "expected a mapping with keys 'version' and 'themes'")
    unknown = sorted(str(key) for key in document if key not in _ALLOWED_TOP_KEYS)
    if unknown:
        raise ThemeConfigError(
            source, f"unknown key(s) {_quote(unknown)}; allowed: {_quote(_ALLOWED_TOP_KEYS)}"
        )
    if "version" not in document:
        raise ThemeConfigError(source, f"missing (expected {THEMES_VERSION})", field="version")
    version = document["version"]
    if isinstance(version, bool) or version != THEMES_VERSION:
        raise ThemeConfigError(
            source,
            f"unsupported version {version!r}; this code reads version {THEMES_VERSION}",
            field="version",
        )
    entries = document.get("themes")
    if not isinstance(entries, list) or not entries:
        raise ThemeConfigError(source, "must be a non-empty list of themes", field="themes")

    themes: list[Theme] = []
    first_position: dict[str, int] = {}
    for position, entry in enumerate(entries, start=1):
        theme = _parse_theme(entry, position=position, source=source)
        if theme.name in first_position:
            raise ThemeConfigError(
                source,
                f"duplicate name; already used by theme #{first_position[theme.name]}",
                theme=theme.name,
                field="name",
            )
        first_position[theme.name] = position
        themes.append(theme)
    return tuple(themes)


def _parse_theme(entry: Any, *, position: int, source: str) -> Theme:
    label = f"#{position}"
    if not isinstance(entry, Mapping):
        raise ThemeConfigError(source, "expected a mapping", theme=label)
    raw_name = entry.get("name")
    if isinstance(raw_name, str) and re.fullmatch(NAME_PATTERN, raw_name):
        label = raw_name

    def fail(field_name: str, problem: str) -> ThemeConfigError:
        return ThemeConfigError(source, problem, theme=label, field=field_name)

    unknown = sorted(str(key) for key in entry if key not in _ALLOWED_THEME_KEYS)
    if unknown:
        raise fail(unknown[0], f"unknown key; allowed: {_quote(_ALLOWED_THEME_KEYS)}")

    texts: dict[str, str] = {}
    for key in _TEXT_FIELDS:
        value = entry.get(key)
        if value is None:
            raise fail(key, "missing")
        if not isinstance(value, str) or not value.strip():
            raise fail(key, "must be a non-empty string")
        # NOTE: the name is an identifier and is taken as written; only prose is trimmed.
        texts[key] = value if key == "name" else value.strip()
    if not re.fullmatch(NAME_PATTERN, texts["name"]):
        raise fail(
            "name",
            f"{texts['name']!r} is not a valid name: use lower-case letters, digits and '_', "
            "starting with a letter, at most 63 characters",
        )

    filters: dict[str, Any] = {}
    for key in _FILTER_FIELDS:
        if key not in entry:
            continue

        def fail_field(problem: str, key: str = key) -> ThemeConfigError:
            return fail(key, problem)

        if key in _CODE_LISTS:
            filters[key] = _parse_code_list(entry[key], allowed=_CODE_LISTS[key], fail=fail_field)
        elif key == "teams":
            filters[key] = _parse_code_list(entry[key], allowed=None, fail=fail_field)
        elif key == "hours":
            filters[key] = _parse_hours(entry[key], fail=fail_field)
        else:
            filters[key] = _parse_months(entry[key], fail=fail_field)
    if not filters:
        raise ThemeConfigError(
            source,
            f"has no filter; give at least one of {_quote(_FILTER_FIELDS)}",
            theme=label,
        )
    return Theme(**texts, **filters, source=source)


_Fail = Callable[[str], ThemeConfigError]


def _parse_code_list(
    value: Any, *, allowed: tuple[str, ...] | None, fail: _Fail
) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise fail("must be a non-empty list (leave the field out to keep all values)")
    seen: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise fail(f"{item!r} is not a non-empty string")
        if allowed is not None and item not in allowed:
            raise fail(f"unknown value {item!r}; allowed: {_quote(allowed)}")
        if item in seen:
            raise fail(f"value {item!r} is listed twice")
        seen.append(item)
    if allowed is None:
        return tuple(sorted(seen))
    return tuple(code for code in allowed if code in seen)


def _parse_hours(value: Any, *, fail: _Fail) -> HourWindow:
    if not isinstance(value, Mapping) or set(value) != {"start", "end"}:
        raise fail("must be a mapping with exactly the keys 'start' and 'end'")
    bounds: dict[str, int] = {}
    for key in ("start", "end"):
        hour = value[key]
        # NOTE: bool is a subclass of int in Python; YAML `yes` must not become hour 1.
        if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= 23:
            raise fail(f"'{key}' must be a whole clock hour 0-23, got {hour!r}")
        bounds[key] = hour
    if bounds["start"] == bounds["end"]:
        raise fail(
            "'start' equals 'end', which is either no hour or all 24; "
            "leave the field out to keep all hours"
        )
    return HourWindow(start=bounds["start"], end=bounds["end"])


def _parse_months(value: Any, *, fail: _Fail) -> MonthWindow:
    if not isinstance(value, Mapping) or set(value) != {"from", "to"}:
        raise fail("must be a mapping with exactly the keys 'from' and 'to'")
    bounds: dict[str, str] = {}
    for key in ("from", "to"):
        month = value[key]
        if not isinstance(month, str) or not re.fullmatch(MONTH_PATTERN, month):
            raise fail(f"'{key}' must be a quoted month \"YYYY-MM\", got {month!r}")
        bounds[key] = month
    if bounds["from"] > bounds["to"]:
        raise fail(f"'from' {bounds['from']} is after 'to' {bounds['to']}")
    return MonthWindow(first=bounds["from"], last=bounds["to"])


def _quote(values: Iterable[str]) -> str:
    return ", ".join(f"'{value}'" for value in values)


def validate_against_teams(themes: Iterable[Theme], team_codes: Iterable[str]) -> None:
    """Check that every team a theme names exists in the data (team_areas).

    Team codes cannot be checked when the file is loaded because they come from the
    reference data; the pipeline calls this once the team table is known.

    Raises
    ------
    ThemeConfigError
        For the first theme naming an unknown team, listing the unknown and the known codes.
    """
    known = sorted(set(team_codes))
    known_set = set(known)
    for theme in themes:
        if theme.teams is None:
            continue
        unknown = [code for code in theme.teams if code not in known_set]
        if unknown:
            raise ThemeConfigError(
                theme.source,
                f"unknown team code(s) {_quote(unknown)}; known: {_quote(known)}",
                theme=theme.name,
                field="teams",
            )


def theme_fingerprint(theme: Theme) -> str:
    """Return a stable 16-hex-digit hash of what a theme selects, for output metadata.

    The hash covers the file format version, the name and every filter in canonical order;
    it leaves out ``title``, ``description`` and the file name, so rewording a title keeps the
    fingerprint while any change to what the theme selects changes it.
    """
    # NOTE: 16 hex digits (64 bits) tell config versions apart; a full 64-hex sha256 would
    # look exactly like a pseudonym (schema.PSEUDONYM_PATTERN) to the privacy guards.
    definition = {
        "version": THEMES_VERSION,
        "name": theme.name,
        "query_types": theme.query_types,
        "query_reasons": theme.query_reasons,
        "sexes": theme.sexes,
        "age_bands": theme.age_bands,
        "hours": None if theme.hours is None else [theme.hours.start, theme.hours.end],
        "teams": theme.teams,
        "months": None if theme.months is None else [theme.months.first, theme.months.last],
    }
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()[:16]


def is_within(inner: Theme, outer: Theme) -> bool:
    """True when every query (and resident) that ``inner`` keeps, ``outer`` keeps too.

    Filters combine with AND, so ``inner`` lies within ``outer`` when, for every filter that
    ``outer`` sets, ``inner`` sets it too and keeps no value ``outer`` does not keep.
    """
    for name in ("query_types", "query_reasons", "sexes", "age_bands", "teams"):
        kept_outer, kept_inner = getattr(outer, name), getattr(inner, name)
        if kept_outer is not None and (kept_inner is None or not set(kept_inner) <= set(kept_outer)):
            return False
    if outer.hours is not None and (
        inner.hours is None or not set(inner.hours.hours) <= set(outer.hours.hours)
    ):
        return False
    if outer.months is not None and (
        inner.months is None
        or not (outer.months.first <= inner.months.first and inner.months.last <= outer.months.last)
    ):
        return False
    return True


def list_nested_themes(themes: Iterable[Theme]) -> list[tuple[str, str]]:
    """Return (inner, outer) name pairs of different themes where inner :func:`is_within` outer.

    Publishing both tables publishes their difference; disclosure control uses these pairs
    (assets.release.flag_theme_differences).
    """
    themes = tuple(themes)
    return sorted(
        (inner.name, outer.name)
        for inner in themes
        for outer in themes
        if inner.name != outer.name and is_within(inner, outer)
    )


# ---------------------------------------------------------------------------------------------
# Filtering


def _local_hour() -> pl.Expr:
    return pl.col("queried_at").dt.convert_time_zone(TIMEZONE).dt.hour()


_FILTER_ORDER = ("query_types", "query_reasons", "months", "teams", "sexes", "age_bands", "hours")
"""The order in which a theme's filters are applied and counted (`count_rows_by_theme_filter`)."""

_FILTER_COLUMNS = {"query_types": "query_type", "query_reasons": "query_reason",
                   "months": "month", "teams": "team_code", "sexes": "sex",
                   "age_bands": "age_band", "hours": "queried_at"}

ROW_FILTERS = ("query_reasons", "hours")
"""A theme's filters on what the persons' cells do not keep (the query reason, the local hour);
its other filters read columns the cells keep (`cell_filter`)."""


def _filter_predicate(key: str, value: Any) -> pl.Expr:
    """The predicate on query rows of one theme filter `key` with its `value`."""
    if key == "months":
        # NOTE: "YYYY-MM" strings sort like the months they name. The `month` column is the
        # export month, which DESIGN.md §4 ties to queried_at in Europe/Amsterdam time.
        return pl.col("month").is_between(pl.lit(value.first), pl.lit(value.last), closed="both")
    if key == "hours":
        hour = _local_hour()
        # NOTE: the local clock, not UTC: "night" means the hours people live by, and the
        # UTC offset of Europe/Amsterdam changes with daylight saving time.
        if value.start < value.end:
            return (hour >= value.start) & (hour < value.end)
        return (hour >= value.start) | (hour < value.end)
    return pl.col(_FILTER_COLUMNS[key]).is_in(list(value))


def _query_filters(theme: Theme) -> list[tuple[str, str, pl.Expr]]:
    """(theme field, column, predicate) for each filter the theme sets, in a fixed order."""
    return [(key, _FILTER_COLUMNS[key], _filter_predicate(key, getattr(theme, key)))
            for key in _FILTER_ORDER if getattr(theme, key) is not None]


def _flag_name(key: str, value: Any) -> str:
    """The column of one row filter in the persons' cells (`row_filter_flags`)."""
    if key == "hours":
        return f"_hours_{value.start}_{value.end}"
    return "_query_reasons_" + "_".join(value)


def row_filter_flags(themes: Iterable[Theme]) -> dict[str, pl.Expr]:
    """One boolean per distinct row filter (`ROW_FILTERS`) of `themes`, in order of first use:
    column name → predicate on query rows, a null (no reason recorded) as False.

    Grouped with the persons' cells as keys, they let every theme of a group be read from one
    scan of the query rows (`cell_filter`)."""
    flags: dict[str, pl.Expr] = {}
    for theme in themes:
        for key in ROW_FILTERS:
            value = getattr(theme, key)
            if value is not None:
                flags.setdefault(_flag_name(key, value),
                                 _filter_predicate(key, value).fill_null(False))
    return flags


def group_by_row_filters(themes: Iterable[Theme], most: int) -> list[tuple[Theme, ...]]:
    """The themes in groups that need at most `most` row-filter flags each (`row_filter_flags`),
    each theme in the first group it fits (a theme that needs more alone), in file order: every
    group is read in one scan.

    NOTE: each flag can double the persons' cells (one row per person, cell and flag value), so
    the flags of one scan are few."""
    groups: list[list[Theme]] = []
    for theme in themes:
        for group in groups:
            if len(row_filter_flags([*group, theme])) <= most:
                group.append(theme)
                break
        else:
            groups.append([theme])
    return [tuple(group) for group in groups]


def cell_filter(theme: Theme) -> pl.Expr:
    """The theme as a predicate on persons' cells grouped with `row_filter_flags` as keys: its
    filters on the cells' own columns (query type, month, team, sex, age band) as in
    `filter_queries`, its row filters as their flag columns. Cells with a null in a filtered
    column never match, as query rows do not."""
    predicates = [pl.col(_flag_name(key, value)) if key in ROW_FILTERS
                  else _filter_predicate(key, value)
                  for key in _FILTER_ORDER if (value := getattr(theme, key)) is not None]
    return pl.all_horizontal(predicates)


def _check_query_columns(theme: Theme, schema: pl.Schema) -> None:
    needed = sorted({column for _, column, _ in _query_filters(theme)})
    missing = [column for column in needed if column not in schema]
    if missing:
        raise ValueError(f"theme '{theme.name}': query table lacks column(s) {_quote(missing)}")
    if theme.hours is not None:
        dtype = schema["queried_at"]
        if not isinstance(dtype, pl.Datetime) or dtype.time_zone is None:
            # NOTE: polars converts a time-zone-naive datetime as if it were UTC, silently;
            # a naive queried_at would put every query in the wrong hour for half the year.
            raise ValueError(
                f"theme '{theme.name}': queried_at must be a time-zone-aware datetime, got {dtype}"
            )


def filter_queries(theme: Theme, queries: pl.LazyFrame) -> pl.LazyFrame:
    """Keep the rows of a core query table that fall inside a theme; one row per query kept.

    Parameters
    ----------
    theme
        The theme to apply.
    queries
        A core query table (``core_person_queries`` / ``core_plate_queries`` schema): the
        columns used are month, query_type, query_reason, sex, age_band, team_code, queried_at.

    Returns
    -------
    polars.LazyFrame
        The same columns and row order, restricted to the theme. Hours are read on the
        Europe/Amsterdam clock from the UTC instant ``queried_at``. A null in a filtered column
        never matches (see :func:`count_rows_by_theme_filter` for how many rows that drops).

    Raises
    ------
    ValueError
        When a column the theme needs is missing, or ``queried_at`` has no time zone.
    """
    filters = _query_filters(theme)
    _check_query_columns(theme, queries.collect_schema())
    if not filters:
        return queries
    return queries.filter(pl.all_horizontal([predicate for _, _, predicate in filters]))


def flag_queries(themes: Iterable[Theme], queries: pl.LazyFrame) -> pl.LazyFrame:
    """The rows of a core query table that at least one of `themes` keeps, with a boolean
    column per distinct row filter of theirs (`row_filter_flags`): what one scan for the
    persons' cells of them all reads; `cell_filter` then picks each theme's cells. One row per
    query kept, in the table's order.
    """
    themes = tuple(themes)
    schema = queries.collect_schema()
    for theme in themes:
        _check_query_columns(theme, schema)
    # NOTE: each row filter is evaluated once, into its flag, and the themes are read through
    # their flags (at 50M queries, evaluating the themes' filters again cost 4.5 s). A row whose
    # filtered column is null is kept by no theme that filters it: the null stays null in
    # `any_horizontal` unless another theme keeps the row.
    return queries.with_columns(**row_filter_flags(themes)).filter(
        pl.any_horizontal([cell_filter(theme) for theme in themes]))


def count_rows_by_theme_filter(theme: Theme, queries: pl.LazyFrame) -> pl.DataFrame:
    """One row per filter of a theme, applied in order: rows in, rows kept, rows dropped.

    Accounts for every row a theme leaves out (house rule 5). Filters are applied one after
    the other in the order of ``filter_step``; ``rows_dropped_null_count`` is the part of the
    dropped rows whose filtered column is null (query reason not recorded, person not linked),
    which a report should describe as *unknown*, not as *outside the theme*. The last row's
    ``rows_out_count`` equals the height of :func:`filter_queries`. Aggregate counts only.

    Returns
    -------
    polars.DataFrame
        Columns filter_step (Int64, from 1), filter (theme field), column (query-table column),
        rows_in_count, rows_out_count, rows_dropped_count, rows_dropped_null_count (Int64).
    """
    filters = _query_filters(theme)
    _check_query_columns(theme, queries.collect_schema())
    aggregations: list[pl.Expr] = [pl.len().cast(pl.Int64).alias("rows_total")]
    kept = pl.lit(True)
    for step, (_, column, predicate) in enumerate(filters, start=1):
        aggregations.append(
            (kept & pl.col(column).is_null()).sum().cast(pl.Int64).alias(f"null_{step}")
        )
        kept = kept & predicate.fill_null(False)
        aggregations.append(kept.sum().cast(pl.Int64).alias(f"out_{step}"))
    totals = queries.select(aggregations).collect().row(0, named=True)

    rows: list[dict[str, Any]] = []
    rows_in = totals["rows_total"]
    for step, (key, column, _) in enumerate(filters, start=1):
        rows_out = totals[f"out_{step}"]
        rows.append(
            {
                "filter_step": step,
                "filter": key,
                "column": column,
                "rows_in_count": rows_in,
                "rows_out_count": rows_out,
                "rows_dropped_count": rows_in - rows_out,
                "rows_dropped_null_count": totals[f"null_{step}"],
            }
        )
        rows_in = rows_out
    return pl.DataFrame(
        rows,
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


def filter_population(theme: Theme, population: pl.DataFrame) -> pl.DataFrame:
    """Restrict the resident benchmark to a theme; one row per population cell kept.

    Only the filters that describe *who* a resident is change the denominator:

    - ``sexes`` / ``age_bands``: an age-sex theme compares queries of, say, young men with
      young men living in the area, so the population keeps the same age-sex cells;
    - ``teams``: a team theme keeps the residents of those teams' areas.

    ``query_types``, ``query_reasons``, ``hours`` and ``months`` leave the residents as they
    are. They describe the query, not the person: everyone living in an area can be checked
    at night or in traffic, so the residents are the benchmark for every hour and reason, and
    a night-hours rate reads "night queries per 1000 residents per year". A month window
    shortens the period, which the per-year rate accounts for; the population itself stays
    the 1 January count of its ``year``.

    Parameters
    ----------
    theme
        The theme to apply.
    population
        ``core_population``: year, team_code, wijk_code, sex, age_band, origin, population.

    Returns
    -------
    polars.DataFrame
        The same columns and row order, restricted to the theme's sexes, age bands and teams.
    """
    predicates: list[pl.Expr] = []
    for key, column in (("sexes", "sex"), ("age_bands", "age_band"), ("teams", "team_code")):
        values = getattr(theme, key)
        if values is not None:
            if column not in population.columns:
                raise ValueError(f"theme '{theme.name}': population lacks column '{column}'")
            predicates.append(pl.col(column).is_in(list(values)))
    if not predicates:
        return population
    return population.filter(pl.all_horizontal(predicates))


__all__ = [
    "ROW_FILTERS",
    "THEMES_PATH",
    "THEMES_VERSION",
    "HourWindow",
    "MonthWindow",
    "Theme",
    "ThemeConfigError",
    "cell_filter",
    "count_rows_by_theme_filter",
    "filter_population",
    "filter_queries",
    "flag_queries",
    "group_by_row_filters",
    "load_themes",
    "parse_themes",
    "row_filter_flags",
    "theme_fingerprint",
    "validate_against_teams",
]
