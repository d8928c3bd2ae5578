"""out_team_trends: how the age-sex standardised ratio of each team and origin changed over time.

Pure and Dagster-free (METHODS.md §8c). Per query_type × benchmark × team_code (and ALL) ×
origin, the Mantel–Haenszel ratio of every complete calendar quarter is compared:

* ``quarter_vs_year_earlier``: the latest complete quarter against the same quarter a year
  earlier, when the data reach back that far;
* ``quarter_vs_first``: the latest complete quarter against the first complete quarter;
* ``trend_per_year``: a log-linear trend over all complete quarters (at least three), as the
  change per year.

The change between two quarters is the ratio of their ratios. Its variance allows for repeat
queries of the same person *in both quarters*: persons are clusters across quarters too, so the
quarterly log ratios are correlated (a person checked again and again in Q1 is likely checked
again in Q4). From the cross products of each person's queries over quarter × stratum
(`assets.stats.clusters.count_cross_products`, centred within each pool of residents),

    Cov(log RR_A, log RR_B) = Cov(R_A, R_B)/(R_A·R_B) + Cov(S_A, S_B)/(S_A·S_B),

with R = Σ w_s a_s and S = Σ u_s b_s the Mantel–Haenszel sums of the group and the reference,
and Var(log RR_A/RR_B) = Var_A + Var_B − 2·Cov_AB. The trend is the generalised least-squares
slope of the quarterly log ratios on time (in years) with that full covariance matrix. Every
result is worded as a change, never as a cause.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import stats

from assets.disproportionality import (
    BENCHMARK_SCOPES,
    STRATA,
    AnalysisSettings,
    PersonUnits,
    _denominators,
    as_text,
    choose_population_year,
    count_person_units,
    list_periods,
)
from assets.schema import ALL_TEAMS, QUERY_TYPES
from assets.stats.exact import fixed_point_sum

COMPARISONS = ("quarter_vs_year_earlier", "quarter_vs_first", "trend_per_year")

TREND_SCHEMA = pl.Schema({
    "query_type": pl.String(),
    "benchmark": pl.String(),
    "team_code": pl.String(),
    "origin": pl.String(),
    "comparison": pl.String(),
    "period_from": pl.String(),
    "period_to": pl.String(),
    "change_ratio": pl.Float64(),
    "change_ci_low": pl.Float64(),
    "change_ci_high": pl.Float64(),
    "p_value": pl.Float64(),
    "q_value": pl.Float64(),
    "interval_method": pl.String(),
})
"""Columns of `compute_team_trends` (out_team_trends; DESIGN.md §5)."""

_CELL = ["query_type", "benchmark", "team_code", "origin"]


def _quarter_inputs(
    units: PersonUnits, population: pl.DataFrame, settings: AnalysisSettings,
) -> tuple[list[str], pl.DataFrame, pl.DataFrame]:
    """The complete quarters, the Mantel–Haenszel weights and counts per quarter × stratum, and
    the persons' cross products over quarter × stratum."""
    quarters = [p for p in units.periods if p.kind == "quarter"]
    labels = [q.label for q in quarters]
    strata = ["unit", *STRATA]
    # NOTE: lazy, so that the quarters' rows are grouped as they are filtered: an eager filter
    # copied nearly all persons' cells first (4 GB over two years at 100M queries).
    numerators = as_text(units.scoped.lazy().filter(pl.col("unit").is_in(labels))
                         .group_by("query_type", "scope", "team_code", "origin", *strata)
                         .agg(pl.col("query_count").sum()).collect())
    years = population["year"].unique().to_list()
    weights = []
    for quarter in quarters:
        pop = population.filter(pl.col("year") == choose_population_year(years, quarter))
        denominators = pl.concat([
            frame.with_columns(benchmark=pl.lit(benchmark))
            for benchmark, frame in _denominators(pop, settings).items()
        ]).filter(pl.col("population") > 0)
        grid = (
            denominators.join(pl.DataFrame({"query_type": list(QUERY_TYPES)}), how="cross")
            .join(BENCHMARK_SCOPES, on="benchmark")
            .join(numerators.filter(pl.col("unit") == quarter.label).drop("unit"),
                  on=["query_type", "scope", "team_code", "origin", *STRATA], how="left")
            .with_columns(pl.col("query_count").fill_null(0), unit=pl.lit(quarter.label))
        )
        ref = grid.filter(pl.col("origin") == settings.reference).select(
            *_CELL[:3], "unit", *STRATA, b="query_count", ref_population="population")
        total = pl.col("population") + pl.col("ref_population")
        weights.append(
            grid.filter(pl.col("origin") != settings.reference)
            .join(ref, on=[*_CELL[:3], "unit", *STRATA])
            .select(*_CELL, "scope", "unit", *STRATA, a="query_count", b="b",
                    w=pl.col("ref_population") / total, u=pl.col("population") / total)
        )
    if units.cross is not None:
        cross = as_text(units.cross.filter(pl.col("unit").is_in(labels)
                                           & pl.col("unit_2").is_in(labels)))
    else:
        # NOTE: independent events: a Poisson count's variance is its mean, and counts of
        # different quarters or strata are independent.
        cross = numerators.select(
            "query_type", "scope", "team_code", "origin", *strata,
            *[pl.col(c).alias(c + "_2") for c in strata],
            cross=pl.col("query_count").cast(pl.Float64))
    return labels, pl.concat(weights).rename({"unit": "quarter"}), cross.rename(
        {"unit": "quarter", "unit_2": "quarter_2"})


def _covariances(weighted: pl.DataFrame, cross: pl.DataFrame, reference: str) -> pl.DataFrame:
    """One row per cell × quarter pair: Cov(log RR_q1, log RR_q2) and the sums R, S per quarter."""
    sums = weighted.group_by(*_CELL, "quarter").agg(
        R=fixed_point_sum(pl.col("w") * pl.col("a")), S=fixed_point_sum(pl.col("u") * pl.col("b")))
    one = ["quarter", *STRATA]
    two = [c + "_2" for c in one]
    w1 = weighted.select(*_CELL, "scope", *one, "w", "u")
    w2 = w1.rename({c: c2 for c, c2 in zip(one, two)} | {"w": "w2", "u": "u2"}).drop("scope")
    own = (
        cross.filter(pl.col("origin") != reference)
        .join(w1.drop("u"), on=["query_type", "scope", "team_code", "origin", *one])
        .join(w2.drop("u2"), on=[*_CELL, *two])
        .group_by(*_CELL, "quarter", "quarter_2")
        .agg(VR=fixed_point_sum(pl.col("w") * pl.col("w2") * pl.col("cross")))
    )
    of_ref = (
        cross.filter(pl.col("origin") == reference).drop("origin")
        .join(w1.drop("w"), on=["query_type", "scope", "team_code", *one])
        .join(w2.drop("w2"), on=[*_CELL, *two])
        .group_by(*_CELL, "quarter", "quarter_2")
        .agg(VS=fixed_point_sum(pl.col("u") * pl.col("u2") * pl.col("cross")))
    )
    pairs = sums.join(sums.rename({"quarter": "quarter_2", "R": "R2", "S": "S2"}), on=_CELL)
    return (
        pairs.join(own, on=[*_CELL, "quarter", "quarter_2"], how="left")
        .join(of_ref, on=[*_CELL, "quarter", "quarter_2"], how="left")
        .with_columns(pl.col("VR", "VS").fill_null(0.0))
        .with_columns(cov=pl.col("VR") / (pl.col("R") * pl.col("R2"))
                      + pl.col("VS") / (pl.col("S") * pl.col("S2")))
    )


def _estimate(label_from: str, label_to: str, log_change: float, variance: float,
              level: float) -> dict:
    z = stats.norm.ppf((1 + level) / 2)
    if not (np.isfinite(log_change) and np.isfinite(variance) and variance > 0):
        return {"period_from": label_from, "period_to": label_to}
    se = float(np.sqrt(variance))
    return {
        "period_from": label_from, "period_to": label_to,
        "change_ratio": float(np.exp(log_change)),
        "change_ci_low": float(np.exp(log_change - z * se)),
        "change_ci_high": float(np.exp(log_change + z * se)),
        "p_value": float(2 * stats.norm.sf(abs(log_change) / se)),
    }


def _comparisons(labels: list[str], log_ratio: dict[str, float], cov: dict[tuple[str, str], float],
                 level: float) -> list[dict]:
    """The three comparisons of one cell from its quarterly log ratios and their covariances."""
    latest, first = labels[-1], labels[0]
    year, quarter = latest.split("-Q")
    earlier = f"{int(year) - 1}-Q{quarter}"
    rows = []

    def change(a: str, b: str) -> dict:
        variance = cov.get((a, a), np.nan) + cov.get((b, b), np.nan) - 2 * cov.get((a, b), 0.0)
        return _estimate(b, a, log_ratio.get(a, np.nan) - log_ratio.get(b, np.nan), variance,
                         level)

    if earlier in labels:
        rows.append({"comparison": "quarter_vs_year_earlier", **change(latest, earlier)})
    if len(labels) >= 2:
        rows.append({"comparison": "quarter_vs_first", **change(latest, first)})
    if len(labels) >= 3:
        y = np.array([log_ratio.get(q, np.nan) for q in labels])
        matrix = np.array([[cov.get((a, b), np.nan) for b in labels] for a in labels])
        estimate = {"period_from": first, "period_to": latest}
        if np.all(np.isfinite(y)) and np.all(np.isfinite(matrix)):
            # NOTE: time in years from the first quarter: the slope is the change per year.
            time = np.array([(int(q[:4]) - int(first[:4])) + (int(q[-1]) - int(first[-1])) / 4
                             for q in labels])
            design = np.column_stack([np.ones(len(labels)), time])
            try:
                inverse = np.linalg.inv(matrix)
                information = design.T @ inverse @ design
                covariance = np.linalg.inv(information)
                slope = float((covariance @ design.T @ inverse @ y)[1])
                estimate = _estimate(first, latest, slope, float(covariance[1, 1]), level)
            except np.linalg.LinAlgError:
                pass
        rows.append({"comparison": "trend_per_year", **estimate})
    return rows


def compute_team_trends(
    queries: pl.LazyFrame,
    population: pl.DataFrame,
    *,
    months: list[str],
    settings: AnalysisSettings = AnalysisSettings(),
    units: PersonUnits | None = None,
) -> pl.DataFrame:
    """One row per query_type × benchmark × team_code (and ALL) × origin × comparison: the
    change of the age-sex standardised ratio between complete quarters (module docstring).

    Columns of `TREND_SCHEMA`. A comparison whose quarters lack a ratio (no query of the group
    or the reference in one of them) keeps its row with null estimates. Fewer than two complete
    quarters give an empty table. q-values are Benjamini–Hochberg over the whole table.
    `units` is `count_person_units` of the same arguments when the caller has it already (the
    team table groups the same cells); read from `queries` when None.
    """
    from assets.stats.shrinkage import bh_q_values

    if sum(p.kind == "quarter" for p in list_periods(months)) < 2:
        return pl.DataFrame(schema=TREND_SCHEMA)
    if units is None:
        units = count_person_units(queries, population, months=months, settings=settings)
    labels, weighted, cross = _quarter_inputs(units, population, settings)
    table = _covariances(weighted, cross, settings.reference).sort(
        *_CELL, "quarter", "quarter_2")
    rows = []
    for key, part in table.group_by(_CELL, maintain_order=True):
        log_ratio = {q: float(np.log(r / s)) if r > 0 and s > 0 else np.nan
                     for q, r, s in part.filter(pl.col("quarter") == pl.col("quarter_2"))
                     .select("quarter", "R", "S").iter_rows()}
        cov = {(a, b): c for a, b, c in part.select("quarter", "quarter_2", "cov").iter_rows()}
        for row in _comparisons(labels, log_ratio, cov, settings.confidence_level):
            rows.append(dict(zip(_CELL, key, strict=True)) | row)
    result = pl.DataFrame(rows, schema_overrides=dict(TREND_SCHEMA)).with_columns(
        interval_method=pl.lit(settings.interval_method))
    for column in TREND_SCHEMA.names():
        if column not in result.columns:
            result = result.with_columns(pl.lit(None, TREND_SCHEMA[column]).alias(column))
    result = result.with_columns(pl.col("change_ratio", "change_ci_low", "change_ci_high",
                                        "p_value").fill_nan(None))
    result = result.with_columns(q_value=bh_q_values(result["p_value"]))
    order = {c: i for i, c in enumerate(COMPARISONS)}
    return (
        result.select(TREND_SCHEMA.names()).cast(dict(TREND_SCHEMA))
        .sort("query_type", "benchmark", pl.col("team_code") == ALL_TEAMS, "team_code", "origin",
              pl.col("comparison").replace_strict(order, return_dtype=pl.Int8))
    )
