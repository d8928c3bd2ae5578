"""out_team_disproportionality: query rates per team and origin against three benchmarks.

Pure and Dagster-free; notebooks call `compute_team_disproportionality` on materialised core
tables. METHODS.md §0–2, §4 and §8; docs/methodology.md explains every choice.
"""

from __future__ import annotations

import calendar
from dataclasses import asdict, dataclass
from datetime import date
from typing import Literal

import polars as pl

from assets.schema import ALL_TEAMS, ORIGINS, QUERY_TYPES, origin_group_expr

BENCHMARKS = ("team_residents", "area_residents", "resident_only")
"""Population benchmarks, METHODS.md §0: (a) residents of the team's area (default), (b)
residents of the whole covered area, (c) only queries of residents of the team's area."""

STRATA = ("sex", "age_band")

OUTPUT_COLUMNS = (
    "period_start", "period_end", "query_type", "benchmark", "team_code", "origin",
    "query_count", "person_count", "population", "queries_per_1000",
    "rate_ratio", "rate_ratio_ci_low", "rate_ratio_ci_high",
    "std_ratio", "std_ratio_ci_low", "std_ratio_ci_high", "p_value", "q_value",
    "shrunk_ratio", "shrunk_ci_low", "shrunk_ci_high",
    "unlinked_count", "rate_ratio_bound_low", "rate_ratio_bound_high",
)


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
    """The inclusive dates covered by a set of export months, and its length in years."""

    start: date
    end: date

    @classmethod
    def from_months(cls, months: list[str]) -> Period:
        if not months:
            raise ValueError("no months to analyse")
        first, last = min(months), max(months)
        y0, m0 = map(int, first.split("-"))
        y1, m1 = map(int, last.split("-"))
        return cls(date(y0, m0, 1), date(y1, m1, calendar.monthrange(y1, m1)[1]))

    @property
    def years(self) -> float:
        # NOTE: rates are per year of the period: days / 365.25.
        return ((self.end - self.start).days + 1) / 365.25


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


def aggregate_queries(queries: pl.LazyFrame, settings: AnalysisSettings) -> pl.DataFrame:
    """One row per query_type × team_code × residence_team × origin × sex × age_band of linked
    queries with `query_count`, plus rows with null origin for unlinked queries."""
    return (
        queries.group_by(
            "query_type", "team_code", "residence_team",
            origin_expr(settings), "sex", "age_band",
        )
        .agg(query_count=pl.len())
        .collect()
    )


def count_persons(queries: pl.LazyFrame, settings: AnalysisSettings) -> pl.DataFrame:
    """One row per query_type × benchmark scope × team_code (and ALL) × origin: distinct persons.

    Distinct counts do not add up over teams or strata, so they are counted per cell here.
    """
    # NOTE: one pass to the distinct (person, team) rows, then four small group-bys: at 50M
    # queries this takes 3 GB instead of 8 GB (docs/performance.md, fix 3). residence_team is
    # a person attribute, so it adds no rows.
    pairs = (
        queries.filter(pl.col("is_linked"))
        .select("query_type", "team_code", origin_expr(settings),
                "person_key", "residence_team")
        .unique()
        .collect()
    )
    persons = pl.col("person_key").n_unique().alias("person_count")
    resident = pairs.filter(pl.col("residence_team") == pl.col("team_code"))
    parts = [
        pairs.group_by("query_type", "team_code", "origin").agg(persons)
        .with_columns(scope=pl.lit("all")),
        pairs.group_by("query_type", "origin").agg(persons)
        .with_columns(team_code=pl.lit(ALL_TEAMS), scope=pl.lit("all")),
        resident.group_by("query_type", "team_code", "origin").agg(persons)
        .with_columns(scope=pl.lit("resident")),
        pairs.filter(pl.col("residence_team").is_not_null()).group_by("query_type", "origin")
        .agg(persons).with_columns(team_code=pl.lit(ALL_TEAMS), scope=pl.lit("resident")),
    ]
    return pl.concat([p.select("query_type", "scope", "team_code", "origin", "person_count")
                      for p in parts])


def _numerators(cells: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """Per benchmark scope, query counts per query_type × team_code (with ALL) × origin × stratum."""
    linked = cells.filter(pl.col("origin").is_not_null())
    keys = ["query_type", "team_code", "origin", *STRATA]

    def with_all(frame: pl.DataFrame) -> pl.DataFrame:
        teams = frame.group_by(keys).agg(pl.col("query_count").sum())
        total = frame.group_by([k for k in keys if k != "team_code"]).agg(
            pl.col("query_count").sum()).with_columns(team_code=pl.lit(ALL_TEAMS))
        return pl.concat([teams, total.select(teams.columns)])

    everyone = with_all(linked)
    # NOTE: resident_only keeps queries of people living in the team's area; its ALL row keeps
    # queries of anyone living in the covered area, wherever in it they were queried.
    residents = pl.concat([
        linked.filter(pl.col("residence_team") == pl.col("team_code"))
        .group_by(keys).agg(pl.col("query_count").sum()),
        linked.filter(pl.col("residence_team").is_not_null())
        .group_by([k for k in keys if k != "team_code"]).agg(pl.col("query_count").sum())
        .with_columns(team_code=pl.lit(ALL_TEAMS)).select(keys + ["query_count"]),
    ])
    return {"all": everyone, "resident": residents}


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
) -> pl.DataFrame:
    """One row per query_type × benchmark × team_code (and ALL) × origin: counts, rates, ratios.

    Parameters
    ----------
    queries : core query rows of both query types for the months analysed (core table schema).
    population : core_population (all years; the reference year is chosen for the period).
    months : the export months analysed; they define period_start, period_end and the years.
    settings : reference origin, confidence level, origin level.

    Every team × origin with residents gets a row, also when it has no queries (count 0).
    """
    from assets.stats.rates import rate_ratio_table

    period = Period.from_months(months)
    year = choose_population_year(population["year"].unique().to_list(), period)
    pop = population.filter(pl.col("year") == year)
    cells = aggregate_queries(queries, settings)
    numerators = _numerators(cells)
    denominators = _denominators(pop, settings)
    persons = count_persons(queries, settings)
    unlinked = cells.filter(pl.col("origin").is_null())
    unlinked = pl.concat([
        unlinked.group_by("query_type", "team_code").agg(unlinked_count=pl.col("query_count").sum()),
        unlinked.group_by("query_type").agg(unlinked_count=pl.col("query_count").sum())
        .with_columns(team_code=pl.lit(ALL_TEAMS)).select("query_type", "team_code", "unlinked_count"),
    ])
    keys = ["team_code", "origin", *STRATA]
    parts = []
    for query_type in QUERY_TYPES:
        for benchmark in BENCHMARKS:
            scope = "resident" if benchmark == "resident_only" else "all"
            num = numerators[scope].filter(pl.col("query_type") == query_type).drop("query_type")
            den = denominators[benchmark]
            # NOTE: the grid is every stratum with residents; queries in a stratum without
            # residents (e.g. visitors of an age absent from a small area) cannot be rated and
            # are reported through query_count only.
            # NOTE: exposure is the integer population: ratios do not depend on the common
            # period length, and integer sums are exact in any order (determinism).
            grid = den.join(num, on=keys, how="left").with_columns(
                pl.col("query_count").fill_null(0)).sort(keys)
            ratable = grid.filter(pl.col("population") > 0)
            crude = rate_ratio_table(
                ratable, count="query_count", exposure="population", group="origin",
                reference=settings.reference, by=("team_code",), level=settings.confidence_level,
            ).select("team_code", "origin", rate_ratio="ratio", rate_ratio_ci_low="ci_low",
                     rate_ratio_ci_high="ci_high", crude_p_value="p_value")
            std = rate_ratio_table(
                ratable, count="query_count", exposure="population", group="origin",
                reference=settings.reference, by=("team_code",), strata=STRATA,
                level=settings.confidence_level,
            ).select("team_code", "origin", std_ratio="ratio", std_ratio_ci_low="ci_low",
                     std_ratio_ci_high="ci_high", p_value="p_value")
            totals = num.group_by("team_code", "origin").agg(pl.col("query_count").sum())
            cell_pop = den.group_by("team_code", "origin").agg(pl.col("population").sum())
            table = (
                cell_pop.join(totals, on=["team_code", "origin"], how="left")
                .with_columns(pl.col("query_count").fill_null(0))
                .join(crude, on=["team_code", "origin"], how="left")
                .join(std, on=["team_code", "origin"], how="left")
                .join(persons.filter((pl.col("query_type") == query_type)
                                     & (pl.col("scope") == scope)).drop("query_type", "scope"),
                      on=["team_code", "origin"], how="left")
                .join(unlinked.filter(pl.col("query_type") == query_type).drop("query_type"),
                      on="team_code", how="left")
                .with_columns(
                    pl.col("person_count").fill_null(0),
                    pl.col("unlinked_count").fill_null(0),
                    query_type=pl.lit(query_type),
                    benchmark=pl.lit(benchmark),
                )
            )
            parts.append(table)
    # NOTE: sorted before the steps that combine rows (BH, shrinkage): group-by output order
    # varies between runs, and float results must not.
    table = pl.concat(parts, how="diagonal_relaxed").sort(
        "query_type", "benchmark", pl.col("team_code") == ALL_TEAMS, "team_code", "origin")
    table = _add_bounds(table, settings)
    table = _add_multiplicity(table, settings)
    return (
        table.with_columns(
            period_start=pl.lit(period.start),
            period_end=pl.lit(period.end),
            queries_per_1000=pl.when(pl.col("population") > 0).then(
                pl.col("query_count") / pl.col("population") / period.years * 1000),
        )
        .select(OUTPUT_COLUMNS)
        .sort("query_type", "benchmark", pl.col("team_code") == ALL_TEAMS, "team_code", "origin")
    )


def _add_bounds(table: pl.DataFrame, settings: AnalysisSettings) -> pl.DataFrame:
    """Missing-origin bounds on the crude ratio (METHODS.md §8): every unlinked query of the
    team given to the reference origin (lower) or to the group (upper)."""
    from assets.stats.shrinkage import missing_origin_bounds

    ref = table.filter(pl.col("origin") == settings.reference).select(
        "query_type", "benchmark", "team_code", ref_count="query_count", ref_population="population")
    joined = table.join(ref, on=["query_type", "benchmark", "team_code"], how="left").with_row_index(
        "_row")
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


def _add_multiplicity(table: pl.DataFrame, settings: AnalysisSettings) -> pl.DataFrame:
    """BH q-values over every non-reference test of the run; empirical-Bayes shrinkage of the
    standardised log ratios across teams, per query type × benchmark × origin (METHODS.md §4)."""
    from scipy.stats import norm

    from assets.stats.shrinkage import bh_q_values, shrink_log_ratios_within

    table = table.with_row_index("_id")
    tested = table.filter((pl.col("origin") != settings.reference) & pl.col("p_value").is_not_null())
    table = table.join(tested.select("_id", q_value=bh_q_values(tested["p_value"])),
                       on="_id", how="left")
    # NOTE: the standard error of log std_ratio is recovered from its symmetric Wald interval.
    z = norm.ppf(0.5 + settings.confidence_level / 2)
    teams = tested.filter(
        (pl.col("team_code") != ALL_TEAMS) & (pl.col("std_ratio") > 0)
        & (pl.col("std_ratio_ci_low") > 0) & pl.col("std_ratio_ci_high").is_finite()
    ).with_columns(
        _log=pl.col("std_ratio").log(),
        _se=(pl.col("std_ratio_ci_high").log() - pl.col("std_ratio_ci_low").log()) / (2 * z),
    )
    shrunk = shrink_log_ratios_within(
        teams.select("_id", "query_type", "benchmark", "origin", "_log", "_se"),
        log_ratio="_log", std_error="_se", by=("query_type", "benchmark", "origin"),
        level=settings.confidence_level,
    ).select("_id", "shrunk_ratio", "shrunk_ci_low", "shrunk_ci_high")
    return table.join(shrunk, on="_id", how="left").sort("_id").drop("_id")


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
    from assets.themes import filter_population, filter_queries, theme_fingerprint

    parts = []
    for theme in themes:
        window = [m for m in months if theme.months is None
                  or theme.months.first <= m <= theme.months.last]
        if not window:
            continue
        table = compute_team_disproportionality(
            filter_queries(theme, queries), filter_population(theme, population),
            months=window, settings=settings,
        )
        if theme.teams is not None:
            # NOTE: the ALL row of a team theme would compare the chosen teams' queries with
            # the residents of the whole area; only the teams themselves are meaningful.
            table = table.filter(pl.col("team_code").is_in(list(theme.teams)))
        parts.append(table.select(
            theme=pl.lit(theme.name), theme_fingerprint=pl.lit(theme_fingerprint(theme)),
            *table.columns,
        ))
    if not parts:
        return pl.DataFrame()
    return pl.concat(parts)


def compute_count_models(
    queries: pl.LazyFrame,
    population: pl.DataFrame,
    *,
    months: list[str],
    settings: AnalysisSettings = AnalysisSettings(),
    families: tuple[str, ...] = ("quasipoisson", "negbin"),
) -> pl.DataFrame:
    """One row per query_type × family × model term level: the rate ratio of a Gelman–Fagan–
    Kiss count model (METHODS.md §3) with its CI, p-value and the model's overdispersion.

    Cells are team × origin × sex × age band with residents (team_residents benchmark);
    log E[queries] = log(residents) + origin + team + sex × age band, treatment-coded against
    the reference origin, the first team and the first stratum.
    """
    from assets.stats.models import exponentiate_coefficients, fit_count_model

    period = Period.from_months(months)
    year = choose_population_year(population["year"].unique().to_list(), period)
    pop = population.filter(pl.col("year") == year).with_columns(
        origin=_origin_expr_pop(settings))
    cells = _numerators(aggregate_queries(queries, settings))["all"].filter(
        pl.col("team_code") != ALL_TEAMS)
    den = pop.group_by("team_code", "origin", *STRATA).agg(pl.col("population").sum())
    parts = []
    for query_type in QUERY_TYPES:
        frame = (
            den.join(cells.filter(pl.col("query_type") == query_type).drop("query_type"),
                     on=["team_code", "origin", *STRATA], how="left")
            .with_columns(pl.col("query_count").fill_null(0),
                          stratum=pl.col("sex") + " " + pl.col("age_band"))
            .filter(pl.col("population") > 0)
            .sort("team_code", "origin", *STRATA)
        )
        for family in families:
            fit = fit_count_model(
                frame, count="query_count", exposure="population",
                factors=("origin", "team_code", "stratum"), family=family,
                references={"origin": settings.reference},
            )
            ratios = exponentiate_coefficients(fit, level=settings.confidence_level)
            parts.append(ratios.with_columns(
                query_type=pl.lit(query_type),
                family=pl.lit(family),
                dispersion=pl.lit(fit.dispersion),
                alpha=pl.lit(fit.alpha, pl.Float64),
                deviance=pl.lit(fit.deviance),
                df_resid=pl.lit(fit.df_resid, pl.Float64),
                cell_count=pl.lit(fit.n_obs),
                period_start=pl.lit(period.start),
                period_end=pl.lit(period.end),
            ))
    table = pl.concat(parts, how="diagonal_relaxed")
    first = ["period_start", "period_end", "query_type", "family"]
    return table.select(first + [c for c in table.columns if c not in first])
