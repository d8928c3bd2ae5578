"""out_team_disproportionality: query rates per team and origin against three benchmarks.

Pure and Dagster-free; notebooks call `compute_team_disproportionality` on materialised core
tables. METHODS.md §0–2, §4 and §8; docs/methodology.md explains every choice.
"""

from __future__ import annotations

import calendar
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import date
from functools import partial
from typing import Literal

import polars as pl

from assets.frames import ConfigError
from assets.schema import ALL_TEAMS, ORIGINS, QUERY_TYPES, origin_group_expr
from assets.stats.exact import fixed_point_sum
from assets.stats.processors import side_by_side

BENCHMARKS = ("team_residents", "area_residents", "resident_only")
"""Population benchmarks, METHODS.md §0: (a) residents of the team's area (default), (b)
residents of the whole covered area, (c) only queries of residents of the team's area."""

STRATA = ("sex", "age_band")

OUTPUT_COLUMNS = (
    "period", "period_start", "period_end", "query_type", "benchmark", "team_code", "origin",
    "query_count", "person_count", "population", "queries_per_1000",
    "rate_ratio", "rate_ratio_ci_low", "rate_ratio_ci_high",
    "std_ratio", "std_ratio_ci_low", "std_ratio_ci_high", "interval_method",
    "person_rate_ratio", "person_rate_ratio_ci_low", "person_rate_ratio_ci_high",
    "p_value", "q_value", "shrunk_ratio", "shrunk_ci_low", "shrunk_ci_high",
    "unlinked_count", "rate_ratio_bound_low", "rate_ratio_bound_high",
)


INTERVAL_METHODS = {
    "person_clustered": "persons as clusters of queries (cluster-robust)",
    "independent_events": "queries as independent events",
}
"""Values of the `interval_method` setting and column (METHODS.md §8b)."""


@dataclass(frozen=True)
class AnalysisSettings:
    """Analysis choices recorded with every output (DESIGN.md §3)."""

    reference_origin: str = "NL"
    """Reference origin code; at group level its group label is used."""
    confidence_level: float = 0.95
    origin_level: Literal["code", "group"] = "code"
    """Origin classification level: CBS 2022 origin codes or the three coarse groups."""
    disclosure_threshold: int = 10
    """Cells with fewer persons (or events) than this are suppressed in publication/."""
    disclosure_round_to: int = 0
    """Round published counts to multiples of this (0: no rounding)."""
    interval_method: Literal["person_clustered", "independent_events"] = "person_clustered"
    """How intervals allow for repeat queries of one person (METHODS.md §8b): persons as
    clusters (default), or every query an independent event (to reproduce published cases)."""

    def __post_init__(self) -> None:
        # NOTE: a ConfigError is shown in full; a KeyError deep inside a statistic would be
        # withheld as possibly quoting data (assets/privacy.py).
        problems = []
        if self.interval_method not in INTERVAL_METHODS:
            problems.append(f"interval_method must be one of {sorted(INTERVAL_METHODS)}, "
                            f"got {self.interval_method!r}")
        if self.reference_origin not in ORIGINS:
            problems.append(f"reference_origin {self.reference_origin!r} is not an origin code "
                            f"(known: {', '.join(ORIGINS)})")
        if self.origin_level not in ("code", "group"):
            problems.append(f"origin_level {self.origin_level!r} must be 'code' or 'group'")
        if not 0 < self.confidence_level < 1:
            problems.append(f"confidence_level {self.confidence_level!r} must lie between 0 and 1")
        if self.disclosure_threshold < 1:
            problems.append(f"disclosure_threshold {self.disclosure_threshold!r} must be at least 1")
        if self.disclosure_round_to < 0:
            problems.append(f"disclosure_round_to {self.disclosure_round_to!r} must be 0 (no "
                            "rounding) or positive")
        if problems:
            raise ConfigError("analysis settings: " + "; ".join(problems))

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def reference(self) -> str:
        """The reference value in the origin column at the chosen level."""
        if self.origin_level == "group":
            return ORIGINS[self.reference_origin][1]
        return self.reference_origin


@dataclass(frozen=True)
class Period:
    """The inclusive dates covered by a set of export months, its label and its length in years.

    Labels (DESIGN.md §5): ``2025-Q3`` for a complete calendar quarter, ``2025`` for a complete
    calendar year, ``2025-01..2026-06`` for the whole range of months analysed.
    """

    start: date
    end: date

    months: tuple[str, ...] = ()
    """The export months the period covers (YYYY-MM)."""
    label: str = ""
    kind: Literal["quarter", "year", "range"] = "range"

    @classmethod
    def from_months(cls, months: list[str], *, label: str = "",
                    kind: Literal["quarter", "year", "range"] = "range") -> Period:
        if not months:
            raise ValueError("no months to analyse")
        first, last = min(months), max(months)
        y0, m0 = map(int, first.split("-"))
        y1, m1 = map(int, last.split("-"))
        return cls(date(y0, m0, 1), date(y1, m1, calendar.monthrange(y1, m1)[1]),
                   tuple(sorted(months)), label or f"{first}..{last}", kind)

    @property
    def years(self) -> float:
        # NOTE: rates are per year of the period: days / 365.25.
        return ((self.end - self.start).days + 1) / 365.25


PERIOD_KINDS = ("quarter", "year", "range")
"""The periods of out_team_disproportionality; out_thematic_disproportionality has
`THEME_PERIOD_KINDS`."""
THEME_PERIOD_KINDS = ("quarter", "range")
"""A theme's periods: quarters and the whole range. NOTE: not the calendar years, which add
cells (and work for disclosure control) that the quarters and the range already cover."""
THEME_ROW_FLAGS = 2
"""The most row filters of themes (`assets.themes.row_filter_flags`) grouped in one scan of the
query rows. NOTE: at 5M queries two (the sample's traffic and night) make 1.24 times the cells
of none (6.1M against 4.9M rows)."""


def list_periods(months: list[str]) -> list[Period]:
    """The periods of a run (DESIGN.md §5), in the order of the output: every complete calendar
    quarter, every complete calendar year, then the whole range of `months`.

    A quarter or year is complete when every one of its months is among `months` (an export
    month that is missing makes its quarter and year incomplete; the range still spans it).
    When the range is itself a calendar year or quarter, both rows appear with their own labels.
    """
    present = sorted(set(months))
    quarters, years = [], []
    for year in sorted({int(m[:4]) for m in present}):
        for quarter in range(1, 5):
            wanted = [f"{year}-{m:02d}" for m in range(3 * quarter - 2, 3 * quarter + 1)]
            if set(wanted) <= set(present):
                quarters.append(Period.from_months(wanted, label=f"{year}-Q{quarter}",
                                                   kind="quarter"))
        wanted = [f"{year}-{m:02d}" for m in range(1, 13)]
        if set(wanted) <= set(present):
            years.append(Period.from_months(wanted, label=str(year), kind="year"))
    return [*quarters, *years, Period.from_months(present)]


def choose_population_year(years: list[int], period: Period) -> int:
    """The population reference year for a period: the latest 1 January on or before its start
    (CBS counts residents on 1 January), else the earliest year available."""
    if not years:
        raise ValueError("population has no rows: no denominator")
    before = [y for y in years if y <= period.start.year]
    return max(before) if before else min(years)


def origin_expr(settings: AnalysisSettings) -> pl.Expr:
    """The `origin` column of core query rows at the run's level (codes or the three groups)."""
    return pl.col("origin_group" if settings.origin_level == "group" else "origin").alias("origin")


def count_person_cells(queries: pl.LazyFrame, settings: AnalysisSettings, *, months: list[str],
                       extra: tuple[str, ...] = ()) -> pl.DataFrame:
    """One row per query_type × team_code × residence_team × origin × sex × age_band × month ×
    person_key (× each `extra` column of `queries`, e.g. the flags of `assets.themes.flag_queries`)
    with `query_count`: the queries of one person in one cell and month. Text columns are
    categoricals.

    Unlinked queries (no person) come in rows with a null person_key and origin, one per
    query_type × team_code × month. Every statistic of `compute_team_disproportionality` —
    query counts, distinct persons, each person's share for the cluster-robust intervals — is
    read from this one table, so the query rows are scanned once. `months` are the export
    months of the rows; rows of any other month (normally none) are grouped too.
    """
    keys = ["query_type", "team_code", "residence_team", origin_expr(settings), "sex",
            "age_band", "month", pl.col("person_key").fill_null(pl.lit(None, pl.UInt64)),
            *extra]
    # NOTE: month by month, as every cell lies in one month: at 50M queries the group-by peaks
    # at 1.8 instead of 5.7 GB and takes 15.7 instead of 17.7 s (the same cells). The scan
    # reads each month's filter from the Parquet statistics (a month reads its own files; the
    # other months' filter costs 0.01 s), so it comes before the cast to categoricals, which
    # would hide it from the scan.
    parts = [*(queries.filter(pl.col("month") == month) for month in months),
             queries.filter(~pl.col("month").is_in(months))]
    # NOTE: the text keys grouped as categorical codes: at 50M queries the group-by into
    # persons' cells peaks 1.4 GB lower (6.55 → 5.15 GB) and runs a fifth faster than on strings.
    return pl.concat([
        part.with_columns(pl.col(pl.String).cast(pl.Categorical)).group_by(keys)
        .agg(query_count=pl.len().cast(pl.Int64)).collect()
        for part in parts
    ]).with_columns(pl.col("person_key").cast(pl.UInt64))


def _scope_cells(person_cells: pl.DataFrame, extra: tuple[str, ...] = ()) -> pl.DataFrame:
    """One row per query_type × scope × team_code (with ALL) × origin × sex × age_band ×
    residence_team × person_key (× `extra` columns, e.g. a quarter) of linked queries, with
    `query_count`: the persons behind every numerator.

    Scope ``all`` counts every query made by the team (and, for ALL, in the covered area);
    ``resident`` only queries of people living in the team's area (for ALL: of anyone living in
    the covered area, wherever in it they were queried) — METHODS.md §0 benchmark (c).
    """
    linked = person_cells.lazy().filter(pl.col("person_key").is_not_null())
    keys = ["query_type", "origin", "sex", "age_band", "residence_team", *extra, "person_key"]

    # NOTE: the literals in the type of the cells' text (categorical codes in PersonUnits).
    text = person_cells.schema["team_code"]
    all_teams = pl.lit(ALL_TEAMS, text)

    def scoped(frame: pl.LazyFrame, scope: str) -> pl.LazyFrame:
        return frame.select("query_type", pl.lit(scope, text).alias("scope"), *keys[1:],
                            "team_code", "query_count")

    def whole_area(frame: pl.LazyFrame) -> pl.LazyFrame:
        return frame.group_by(keys).agg(pl.col("query_count").sum()).with_columns(
            team_code=all_teams)

    # NOTE: the cells grouped by team once; the residents' rows are a subset of those (the
    # residence team is a key) and the whole area's are sums of them, which have fewer rows than
    # the cells (months summed into quarters): at 50M queries 9.1 → 6.5 s, the same rows.
    def of_type(query_type: str | None) -> pl.DataFrame:
        teams = (linked.filter(pl.col("query_type").eq_missing(query_type))
                 .group_by(*keys, "team_code").agg(pl.col("query_count").sum()).collect().lazy())
        return pl.concat([
            scoped(teams, "all"),
            scoped(whole_area(teams), "all"),
            scoped(teams.filter(pl.col("residence_team") == pl.col("team_code")), "resident"),
            scoped(whole_area(teams.filter(pl.col("residence_team").is_not_null())), "resident"),
        ]).select("query_type", "scope", "team_code", "origin", "sex", "age_band",
                  "residence_team", *extra, "person_key", "query_count").collect()

    # NOTE: one query type at a time (every key holds it): the group-by and the four scopes of
    # one type are held at once, not both types'. At 50M queries the team tables peak 4.01 →
    # 3.59 GB and the themes 4.16 → 3.84 GB, in the same time and with the same rows; over two
    # years at 100M 7.35 → 5.84 and 7.57 → 6.93 GB, and the whole run 8.34 → 7.74 GB.
    types = person_cells.get_column("query_type").unique().sort(nulls_last=True).to_list()
    return pl.concat([of_type(query_type) for query_type in types or [None]])


def resident_pools(population: pl.DataFrame, settings: AnalysisSettings) -> pl.DataFrame:
    """One row per residence_team × origin × sex × age_band: `pool_size`, its residents — the
    pools of people whose query counts vary around one mean (`count_cross_products`)."""
    return (
        population.with_columns(origin=_origin_expr_pop(settings))
        .group_by("team_code", "origin", *STRATA)
        .agg(pool_size=pl.col("population").sum())
        .rename({"team_code": "residence_team"})
    )


def _denominators(population: pl.DataFrame, settings: AnalysisSettings) -> dict[str, pl.DataFrame]:
    """Residents per team_code (with ALL) × origin × stratum, per benchmark."""
    pop = population.with_columns(origin=_origin_expr_pop(settings))
    keys = ["team_code", "origin", *STRATA]
    teams = pop.group_by(keys).agg(pl.col("population").sum())
    area = pop.group_by(["origin", *STRATA]).agg(pl.col("population").sum())
    team_codes = teams.select("team_code").unique()
    with_all = pl.concat([teams, area.with_columns(team_code=pl.lit(ALL_TEAMS)).select(teams.columns)])
    # NOTE: area_residents: every team's queries are set against the residents of the whole
    # covered area of the same origin and stratum.
    area_for_teams = pl.concat([
        team_codes.join(area, how="cross").select(teams.columns),
        area.with_columns(team_code=pl.lit(ALL_TEAMS)).select(teams.columns),
    ])
    return {"team_residents": with_all, "area_residents": area_for_teams, "resident_only": with_all}


def _origin_expr_pop(settings: AnalysisSettings) -> pl.Expr:
    if settings.origin_level == "group":
        return origin_group_expr(pl.col("origin"))
    return pl.col("origin")


def compute_team_disproportionality(
    queries: pl.LazyFrame,
    population: pl.DataFrame,
    *,
    months: list[str],
    settings: AnalysisSettings = AnalysisSettings(),
    period_kinds: tuple[str, ...] = PERIOD_KINDS,
    units: PersonUnits | None = None,
) -> pl.DataFrame:
    """One row per period × query_type × benchmark × team_code (and ALL) × origin: counts,
    rates, ratios.

    Parameters
    ----------
    queries : core query rows of both query types for the months analysed (core table schema).
    population : core_population (all years; the reference year is chosen per period).
    months : the export months analysed; they define the periods (`list_periods`: every
        complete quarter and calendar year, and the whole range) of `period_kinds`.
    settings : reference origin, confidence level, origin level, interval method.
    units : `count_person_units` of the same arguments, when the caller has it already (the
        trends group the same cells); read from `queries` when None.

    Every team × origin with residents gets a row, also when it has no queries (count 0).
    Intervals and p-values allow for repeat queries of one person (persons as clusters) unless
    ``settings.interval_method == "independent_events"``; `interval_method` names which.
    `person_rate_ratio` compares persons queried per resident (people, not events), age-sex
    standardised (Mantel–Haenszel risk ratio, Greenland–Robins variance).
    """
    from assets.stats.rates import rate_ratio_table

    if units is None:
        units = count_person_units(queries, population, months=months, settings=settings,
                                   period_kinds=period_kinds)
    cells = ["period", "query_type", "benchmark", "team_code"]
    # NOTE: a period with the months of an earlier one (the whole range of a one-year run, after
    # its calendar year) has the same cells, population year and so the same numbers: the
    # earlier one's rows are copied under its label before the q-values, which still count
    # both (at 5M queries and on the sample one period of six less).
    first_label = {}
    for period in units.periods:
        first_label.setdefault(period.months, period.label)
    computed = [p for p in units.periods if first_label[p.months] == p.label]
    copies = {p.label: first_label[p.months] for p in units.periods
              if first_label[p.months] != p.label}
    per_period = [_period_cells(units, period, counts, population, settings)
                  for period, counts in zip(computed, _count_periods(units, computed),
                                            strict=True)]
    grid = pl.concat([g for g, _, _ in per_period]).sort(*cells, "origin", *STRATA)
    cross = pl.concat([c for _, c, _ in per_period]) if units.cross is not None else None
    persons = pl.concat([p for _, _, p in per_period])
    ratable = grid.filter(pl.col("population") > 0)
    ratio_kwargs = dict(exposure="population", group="origin", reference=settings.reference,
                        by=cells, level=settings.confidence_level)
    crude = rate_ratio_table(ratable, count="query_count", cross_products=cross, **ratio_kwargs
                             ).select(*cells, "origin", rate_ratio="ratio",
                                      rate_ratio_ci_low="ci_low", rate_ratio_ci_high="ci_high")
    std = rate_ratio_table(ratable, count="query_count", strata=STRATA, cross_products=cross,
                           **ratio_kwargs).select(
        *cells, "origin", std_ratio="ratio", std_ratio_ci_low="ci_low",
        std_ratio_ci_high="ci_high", p_value="p_value", design_effect="design_effect")
    people = rate_ratio_table(ratable, count="person_count", strata=STRATA, outcome="persons",
                              **ratio_kwargs).select(
        *cells, "origin", person_rate_ratio="ratio", person_rate_ratio_ci_low="ci_low",
        person_rate_ratio_ci_high="ci_high")
    shrunk = _shrink(ratable, std, settings)
    keys = [*cells, "origin"]
    spans = pl.DataFrame({
        "period": [p.label for p in units.periods],
        "period_start": [p.start for p in units.periods],
        "period_end": [p.end for p in units.periods],
        "_years": [p.years for p in units.periods],
        "_order": list(range(len(units.periods))),
    })
    table = (
        grid.group_by(keys).agg(pl.col("query_count").sum(), pl.col("population").sum())
        .join(crude, on=keys, how="left")
        .join(std.drop("design_effect"), on=keys, how="left")
        .join(people, on=keys, how="left")
        .join(shrunk, on=keys, how="left")
        .join(persons, on=keys, how="left")
    )
    table = pl.concat([table, *(
        table.filter(pl.col("period") == source).with_columns(period=pl.lit(label))
        for label, source in copies.items())])
    table = (
        table.join(units.unlinked_by_period(), on=["period", "query_type", "team_code"],
                   how="left")
        .join(spans, on="period")
        .with_columns(
            pl.col("person_count").fill_null(0),
            pl.col("unlinked_count").fill_null(0).cast(pl.Int64),
            queries_per_1000=pl.when(pl.col("population") > 0).then(
                pl.col("query_count") / pl.col("population") / pl.col("_years") * 1000),
        )
    )
    # NOTE: sorted before the steps that combine rows (BH, shrinkage): group-by output order
    # varies between runs, and float results must not.
    row_order = ("_order", "query_type", "benchmark", pl.col("team_code") == ALL_TEAMS,
                 "team_code", "origin")
    table = table.sort(*row_order)
    table = _add_bounds(table, settings)
    table = _add_q_values(table, settings)
    return (
        table.sort(*row_order)
        .with_columns(interval_method=pl.lit(settings.interval_method))
        .select(OUTPUT_COLUMNS)
    )


BENCHMARK_SCOPES = pl.DataFrame({
    "benchmark": list(BENCHMARKS),
    "scope": ["resident" if b == "resident_only" else "all" for b in BENCHMARKS],
})
"""Which persons each benchmark counts: every query of the team, or only its residents'."""


@dataclass(frozen=True)
class PersonUnits:
    """Each person's linked queries per cell and time unit, read once from the query rows.

    A unit is a complete calendar quarter (``2025-Q3``) or, outside complete quarters, a month:
    every period of the run (`periods`) is a union of units, so its counts, distinct persons and
    per-person cross products are sums over its units — and two quarters' cross products give
    the covariance of their ratios (`assets.trends`).

    The text columns of `scoped`, `unlinked` and `cross` are polars categoricals: grouping
    millions of persons' cells on integer codes is about twice as fast as on strings. What is
    aggregated from them goes through `as_text` before it meets other tables.

    Attributes
    ----------
    periods : the run's periods (`list_periods`).
    unit_of : month → unit label.
    scoped : one row per query_type × scope × team_code (and ALL) × origin × sex × age_band ×
        residence_team × unit × person_key with `query_count` (`_scope_cells`).
    unlinked : one row per query_type × team_code (and ALL) × unit with `unlinked_count`.
    cross : the persons' cross products over unit × stratum per query_type × scope × team_code ×
        origin, centred within pools of residents (`count_cross_products`); None when the
        intervals treat queries as independent events.
    """

    periods: list[Period]
    unit_of: dict[str, str]
    scoped: pl.DataFrame
    unlinked: pl.DataFrame
    cross: pl.DataFrame | None

    def units(self, period: Period) -> list[str]:
        return sorted({self.unit_of[m] for m in period.months})

    def unlinked_by_period(self) -> pl.DataFrame:
        """One row per period × query_type × team_code (and ALL) with `unlinked_count`."""
        return as_text(pl.concat([
            self.unlinked.filter(pl.col("unit").is_in(self.units(period)))
            .group_by("query_type", "team_code").agg(pl.col("unlinked_count").sum())
            .with_columns(period=pl.lit(period.label))
            for period in self.periods
        ]).select("period", "query_type", "team_code", "unlinked_count"))


def as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame with its categorical columns as strings (`PersonUnits` keeps codes)."""
    return frame.with_columns(pl.col(pl.Categorical).cast(pl.String))


def count_person_units(
    queries: pl.LazyFrame, population: pl.DataFrame, *, months: list[str],
    settings: AnalysisSettings, period_kinds: tuple[str, ...] = PERIOD_KINDS,
) -> PersonUnits:
    """Read the query rows once into `PersonUnits` (see there), for the periods of
    `period_kinds`."""
    return person_units_of_cells(count_person_cells(queries, settings, months=months), population,
                                 months=months, settings=settings, period_kinds=period_kinds)


def person_units_of_cells(
    cells: pl.DataFrame, population: pl.DataFrame, *, months: list[str],
    settings: AnalysisSettings, period_kinds: tuple[str, ...] = PERIOD_KINDS,
) -> PersonUnits:
    """`PersonUnits` of persons' cells (`count_person_cells`; rows of the same cell, month and
    person are summed, so cells grouped by more keys will do) in the months `months`."""
    from assets.stats.clusters import count_cross_products

    periods = [p for p in list_periods(months) if p.kind in period_kinds]
    unit_of = {m: m for m in months} | {
        m: p.label for p in periods if p.kind == "quarter" for m in p.months}
    # NOTE: the months replaced as categoricals, not as text: 0.55 → 0.16 s on the team tables'
    # 23.5M cells at 50M queries, the same column.
    cells = cells.with_columns(unit=pl.col("month").replace_strict(
        pl.Series(list(unit_of)).cast(cells.schema["month"]),
        pl.Series(list(unit_of.values())).cast(pl.Categorical)))
    scoped = _scope_cells(cells, extra=("unit",))
    unlinked = cells.filter(pl.col("person_key").is_null())
    unlinked = pl.concat([
        unlinked.group_by("query_type", "team_code", "unit").agg(
            unlinked_count=pl.col("query_count").sum()),
        unlinked.group_by("query_type", "unit").agg(unlinked_count=pl.col("query_count").sum())
        .with_columns(team_code=pl.lit(ALL_TEAMS, pl.Categorical))
        .select("query_type", "team_code", "unit", "unlinked_count"),
    ])
    # NOTE: the cells are read no further: freed before the cross products, the step with the
    # highest memory of the team tables (at 50M, 1 GB less at its peak).
    del cells
    cross = None
    if settings.interval_method == "person_clustered":
        # NOTE: the residents of one team, origin and stratum are one pool of people with the
        # same expected count (those never queried included): variances are taken around the
        # pool's mean. Visitors from outside the area come from no known pool. The pools are
        # the residents counted for the whole range.
        years = population["year"].unique().to_list()
        pop = population.filter(pl.col("year") == choose_population_year(years, periods[-1]))
        cross = count_cross_products(
            scoped, cluster="person_key", count="query_count",
            keys=("query_type", "scope", "team_code", "origin"), strata=("unit", *STRATA),
            pool_sizes=resident_pools(pop, settings), summed=True)
    return PersonUnits(periods, unit_of, scoped, unlinked, cross)


def _count_periods(units: PersonUnits, periods: list[Period]
                   ) -> list[tuple[pl.DataFrame, pl.DataFrame]]:
    """Per period of `periods` (periods of `units`): the linked queries and distinct persons per
    query_type × scope × team_code × origin × stratum, and the distinct persons per query_type ×
    scope × team_code × origin."""
    plans = []
    for period in periods:
        scoped = units.scoped.lazy().filter(pl.col("unit").is_in(units.units(period)))
        plans += [
            scoped.group_by("query_type", "scope", "team_code", "origin", *STRATA).agg(
                pl.col("query_count").sum(),
                person_count=pl.col("person_key").n_unique().cast(pl.Int64)),
            scoped.group_by("query_type", "scope", "team_code", "origin").agg(
                person_count=pl.col("person_key").n_unique().cast(pl.Int64)),
        ]
    # NOTE: lazy, and every period's group-bys in one collect: polars' lazy group-by on string
    # keys is about three times faster than the eager one (2.1), and one collect keeps both
    # processors busy where a collect per period waits for its slowest group-by (at 5M queries
    # the team table's six periods 6.1 → 4.1 s).
    counted = [as_text(frame) for frame in pl.collect_all(plans)]
    return list(zip(counted[::2], counted[1::2], strict=True))


def _period_cells(
    units: PersonUnits, period: Period, counts: tuple[pl.DataFrame, pl.DataFrame],
    population: pl.DataFrame, settings: AnalysisSettings,
) -> tuple[pl.DataFrame, pl.DataFrame | None, pl.DataFrame]:
    """One period's grid (period × query_type × benchmark × team_code × origin × stratum with
    residents, `query_count` and distinct `person_count`), its cross products per benchmark,
    and its distinct persons per cell; `counts` is the period's item of `_count_periods`."""
    from assets.stats.clusters import SECOND_SUFFIX

    within = units.units(period)
    numerators, persons = counts
    years = population["year"].unique().to_list()
    pop = population.filter(pl.col("year") == choose_population_year(years, period))
    denominators = pl.concat([
        frame.with_columns(benchmark=pl.lit(benchmark))
        for benchmark, frame in _denominators(pop, settings).items()
    ])
    # NOTE: the grid is every stratum with residents; queries in a stratum without residents
    # (e.g. visitors of an age absent from a small area) cannot be rated and are reported
    # through query_count only. Exposure is the integer population: ratios do not depend on the
    # common period length, and integer sums are exact in any order (determinism).
    grid = (
        denominators.join(pl.DataFrame({"query_type": list(QUERY_TYPES)}), how="cross")
        .join(BENCHMARK_SCOPES, on="benchmark")
        .join(numerators, on=["query_type", "scope", "team_code", "origin", *STRATA], how="left")
        .with_columns(pl.col("query_count", "person_count").fill_null(0),
                      period=pl.lit(period.label))
        .drop("scope")
    )
    with_benchmark = BENCHMARK_SCOPES.join(
        persons.with_columns(period=pl.lit(period.label)), on="scope").drop("scope")
    cross = None
    if units.cross is not None:
        second = [s + SECOND_SUFFIX for s in STRATA]
        cross = (
            units.cross.filter(pl.col("unit").is_in(within) & pl.col("unit_2").is_in(within))
            .group_by("query_type", "scope", "team_code", "origin", *STRATA, *second)
            .agg(fixed_point_sum(pl.col("cross")))
            .pipe(as_text)
            # NOTE: a period's sum of squares over several units is never below zero either.
            .with_columns(pl.when(pl.all_horizontal(pl.col(s) == pl.col(s2)
                                                    for s, s2 in zip(STRATA, second)))
                          .then(pl.col("cross").clip(lower_bound=0.0))
                          .otherwise(pl.col("cross")))
            .join(BENCHMARK_SCOPES, on="scope").drop("scope")
            .with_columns(period=pl.lit(period.label))
        )
    return grid, cross, with_benchmark


def _shrink(ratable: pl.DataFrame, std: pl.DataFrame, settings: AnalysisSettings) -> pl.DataFrame:
    """Shrunk standardised ratios of the teams (not ALL) per period × query type × benchmark ×
    origin (METHODS.md §4): the Poisson–lognormal model of
    `assets.stats.shrinkage.shrink_ratios_within` on the same strata as std_ratio, each team's
    likelihood divided by its std_ratio design effect."""
    from assets.stats.shrinkage import shrink_ratios_within

    cells = ["period", "query_type", "benchmark"]
    teams = ratable.filter(pl.col("team_code") != ALL_TEAMS)
    ref = teams.filter(pl.col("origin") == settings.reference).select(
        *cells, "team_code", *STRATA, ref_count="query_count", ref_exposure="population")
    paired = (
        teams.filter(pl.col("origin") != settings.reference)
        .join(ref, on=[*cells, "team_code", *STRATA], how="inner")
        .join(std.select(*cells, "team_code", "origin", "design_effect"),
              on=[*cells, "team_code", "origin"], how="left")
        .rename({"query_count": "count", "population": "exposure"})
    )
    return shrink_ratios_within(
        paired, unit="team_code", by=(*cells, "origin"), design_effect="design_effect",
        level=settings.confidence_level,
    ).select(*cells, "team_code", "origin", "shrunk_ratio", "shrunk_ci_low", "shrunk_ci_high")


def _add_bounds(table: pl.DataFrame, settings: AnalysisSettings) -> pl.DataFrame:
    """Missing-origin bounds on the crude ratio (METHODS.md §8): every unlinked query of the
    team given to the reference origin (lower) or to the group (upper)."""
    from assets.stats.shrinkage import missing_origin_bounds

    cell = ["period", "query_type", "benchmark", "team_code"]
    ref = table.filter(pl.col("origin") == settings.reference).select(
        *cell, ref_count="query_count", ref_population="population")
    joined = table.join(ref, on=cell, how="left").with_row_index("_row")
    ratable = joined.filter((pl.col("population") > 0) & (pl.col("ref_population") > 0))
    bounds = missing_origin_bounds(
        ratable["query_count"], ratable["population"], ratable["ref_count"],
        ratable["ref_population"], ratable["unlinked_count"],
    )
    return joined.join(
        ratable.select("_row").with_columns(
            rate_ratio_bound_low=bounds["ratio_lower_bound"],
            rate_ratio_bound_high=bounds["ratio_upper_bound"]),
        on="_row", how="left",
    ).drop("_row", "ref_count", "ref_population")


def _add_q_values(table: pl.DataFrame, settings: AnalysisSettings) -> pl.DataFrame:
    """Benjamini–Hochberg q-values over every non-reference test of the run (METHODS.md §4)."""
    from assets.stats.shrinkage import bh_q_values

    table = table.with_row_index("_id")
    tested = table.filter((pl.col("origin") != settings.reference) & pl.col("p_value").is_not_null())
    return table.join(tested.select("_id", q_value=bh_q_values(tested["p_value"])),
                      on="_id", how="left").sort("_id").drop("_id")


def compute_thematic_disproportionality(
    queries: pl.LazyFrame,
    population: pl.DataFrame,
    themes: tuple,
    *,
    months: list[str],
    settings: AnalysisSettings = AnalysisSettings(),
) -> pl.DataFrame:
    """One row per theme × query_type × benchmark × team_code × origin: the columns of
    out_team_disproportionality for the theme's slice, plus `theme` and `theme_fingerprint`.

    A theme's queries are filtered by every filter; its residents only by sex, age band and
    team (assets.themes). Its period is its month window within the months analysed; a theme
    whose window holds none of them gives no rows.
    """
    from assets.themes import flag_queries, group_by_row_filters, row_filter_flags

    windows = {theme.name: [m for m in months if theme.months is None
                            or theme.months.first <= m <= theme.months.last] for theme in themes}
    tables = {}
    # NOTE: the persons' cells of a group of themes come from one scan of the rows that any of
    # them keeps, grouped with their row filters (query reason, hour) as keys; each theme takes
    # its cells from there (at 50M queries the sample's six themes' cells 26.8 → 18.8 s, the
    # step 77–81 → 68–70 s; its peak 3.6 → 4.9 GB, below the team tables').
    for group in group_by_row_filters([t for t in themes if windows[t.name]], THEME_ROW_FLAGS):
        cells = count_person_cells(flag_queries(group, queries), settings, months=months,
                                   extra=tuple(row_filter_flags(group)))
        # NOTE: the themes of a group two at a time on small cells (`side_by_side`): one theme
        # leaves part of two processors idle (its small polars and numpy steps wait on the
        # interpreter lock), and each theme's table is the same wherever it was computed. At 5M
        # queries the six themes 26.7–28.3 → 24.7–25.5 s for the same processor time.
        one_theme = partial(_theme_table, cells=cells, queries=queries, population=population,
                            settings=settings)
        with ThreadPoolExecutor(side_by_side(cells.height)) as pool:
            tables.update(zip([theme.name for theme in group],
                              pool.map(one_theme, group, [windows[t.name] for t in group])))
        del cells, one_theme
    if not tables:
        return pl.DataFrame()
    return pl.concat([tables[theme.name] for theme in themes if theme.name in tables])


def _theme_table(theme, months: list[str], *, cells: pl.DataFrame, queries: pl.LazyFrame,
                 population: pl.DataFrame, settings: AnalysisSettings) -> pl.DataFrame:
    """One theme's rows of `compute_thematic_disproportionality`, from the persons' cells of its
    group of themes (`cells`) in the theme's months `months`."""
    from assets.themes import cell_filter, filter_population, filter_queries, theme_fingerprint

    theme_population = filter_population(theme, population)
    units = person_units_of_cells(
        cells.filter(cell_filter(theme)), theme_population, months=months, settings=settings,
        period_kinds=THEME_PERIOD_KINDS)
    table = compute_team_disproportionality(
        filter_queries(theme, queries), theme_population, months=months, settings=settings,
        period_kinds=THEME_PERIOD_KINDS, units=units)
    if theme.teams is not None:
        # NOTE: the ALL row of a team theme would compare the chosen teams' queries with the
        # residents of the whole area; only the teams themselves are meaningful.
        table = table.filter(pl.col("team_code").is_in(list(theme.teams)))
    return table.select(theme=pl.lit(theme.name),
                        theme_fingerprint=pl.lit(theme_fingerprint(theme)), *table.columns)


def compute_count_models(
    queries: pl.LazyFrame,
    population: pl.DataFrame,
    *,
    months: list[str],
    settings: AnalysisSettings = AnalysisSettings(),
    families: tuple[str, ...] = ("quasipoisson", "negbin"),
    units: PersonUnits | None = None,
) -> pl.DataFrame:
    """One row per query_type × family × model term level: the rate ratio of a Gelman–Fagan–
    Kiss count model (METHODS.md §3) with its CI, p-value and the model's overdispersion.

    Cells are team × origin × sex × age band with residents (team_residents benchmark);
    log E[queries] = log(residents) + origin + team + sex × age band, treatment-coded against
    the reference origin, the first team and the first stratum. Standard errors are
    cluster-robust with persons as clusters unless the settings ask for independent events;
    a level without any query is reported as not estimable (`is_estimable` false, no ratio).
    `units`: `count_person_units` of the same queries and months, when the caller has it
    already (the team tables); the query rows are grouped here when None.
    """
    from assets.stats.models import exponentiate_coefficients, fit_count_models

    period = Period.from_months(months)
    year = choose_population_year(population["year"].unique().to_list(), period)
    pop = population.filter(pl.col("year") == year).with_columns(
        origin=_origin_expr_pop(settings))
    keys = ["query_type", "team_code", "residence_team", "origin", *STRATA, "person_key"]
    if units is None:
        # NOTE: each person's linked queries per team and cell, grouped straight from the query
        # rows: the rows of scope "all" of `_scope_cells` without the three other scopes it
        # would build and this model drops (at 5M queries 3.9 → 1.0 s, the same rows).
        scoped = (
            queries.filter(pl.col("person_key").is_not_null()
                           & pl.col("month").is_in(period.months))
            .with_columns(origin_expr(settings))
            .group_by(keys)
            .agg(query_count=pl.len().cast(pl.Int64))
            .collect()
        )
    else:
        if sorted(units.unit_of) != sorted(months):
            raise ValueError("units: count_person_units of other months than `months`")
        # NOTE: the same rows from the team tables' cells, summed over their time units (every
        # month of the run): at 50M queries the 80M query rows are not grouped a second time.
        # They stay categorical codes up to the clusters' join: only the cells, a few thousand
        # rows, become text (at 50M queries 1.2 s less than the persons' 6.7M rows as text).
        scoped = (
            units.scoped.lazy()
            .filter((pl.col("scope") == "all") & (pl.col("team_code") != ALL_TEAMS))
            .group_by(keys)
            .agg(pl.col("query_count").sum())
            .collect()
        )
    cell_keys = ["team_code", "origin", *STRATA]
    den = pop.group_by(cell_keys).agg(pl.col("population").sum())
    parts = []
    for query_type in QUERY_TYPES:
        persons = scoped.filter(pl.col("query_type") == query_type)
        frame = (
            den.join(as_text(persons.group_by(cell_keys).agg(pl.col("query_count").sum())),
                     on=cell_keys, how="left")
            .with_columns(pl.col("query_count").fill_null(0),
                          stratum=pl.col("sex") + " " + pl.col("age_band"))
            .filter(pl.col("population") > 0)
            .sort(cell_keys)
            .with_row_index("row")
        )
        if frame["query_count"].sum() == 0:
            continue  # NOTE: no queries of this type (e.g. a theme without plates): no model.
        # NOTE: queries of a stratum or team without residents cannot enter a model with a
        # log-population offset; they are the same ones the rate tables leave unrated.
        clusters = None
        if settings.interval_method == "person_clustered":
            rows = frame.select("row", *(pl.col(c).cast(persons.schema[c]) for c in cell_keys))
            clusters = persons.join(rows, on=cell_keys).select(
                pl.col("row").cast(pl.Int64), cluster="person_key", count="query_count")
        fits = fit_count_models(
            frame, count="query_count", exposure="population",
            factors=("origin", "team_code", "stratum"), families=families,
            references={"origin": settings.reference}, clusters=clusters,
        )
        for family, fit in zip(families, fits, strict=True):
            ratios = exponentiate_coefficients(fit, level=settings.confidence_level)
            parts.append(ratios.with_columns(
                query_type=pl.lit(query_type),
                family=pl.lit(family),
                interval_method=pl.lit(settings.interval_method),
                dispersion=pl.lit(fit.dispersion),
                alpha=pl.lit(fit.alpha, pl.Float64),
                deviance=pl.lit(fit.deviance),
                df_resid=pl.lit(fit.df_resid, pl.Float64),
                cell_count=pl.lit(fit.n_obs),
                period_start=pl.lit(period.start),
                period_end=pl.lit(period.end),
            ))
    if not parts:
        return pl.DataFrame()
    table = pl.concat(parts, how="diagonal_relaxed")
    first = ["period_start", "period_end", "query_type", "family"]
    return table.select(first + [c for c in table.columns if c not in first])
