"""Outcome (hit-rate) test: how often does a query of each origin group return an alert?

If officers query people of one group on weaker suspicion than others, fewer of that
group's queries "hit" (return an alert, MEOS field ``hit``). A lower hit rate for a group
than for the reference group, within the same team, is evidence of a lower threshold
for querying that group (Knowles, Persico & Todd 2001). The test needs no population
benchmark, but it has two known weaknesses stated in docs/methodology-benchmark-free.md:
infra-marginality, and that the MEOS hit field is optional, so the queries it is filled
in for are a selection.

Layout of :func:`compute_outcome_test` (``out_outcome_test``): one row per query_type ×
team_code × origin, where team_code is each team and ``ALL`` (the whole area). Every row
has the pooled hit rate of its cell. ``ALL`` rows add the Open Policing Project
aggregation: the unweighted mean of the per-team hit rates (``mean_team_hit_rate``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from statsmodels.stats.proportion import proportion_confint

from assets.stats.exact import fixed_point_mean

OUTPUT_SCHEMA = pl.Schema(
    {
        "query_type": pl.String(),
        "team_code": pl.String(),
        "origin": pl.String(),
        "query_count": pl.Int64(),
        "hit_count": pl.Int64(),
        "hit_missing_count": pl.Int64(),
        "hit_rate": pl.Float64(),
        "hit_rate_ci_low": pl.Float64(),
        "hit_rate_ci_high": pl.Float64(),
        "hit_rate_diff": pl.Float64(),
        "hit_rate_diff_ci_low": pl.Float64(),
        "hit_rate_diff_ci_high": pl.Float64(),
        "design_effect": pl.Float64(),
        "interval_method": pl.String(),
        "team_count": pl.Int64(),
        "mean_team_hit_rate": pl.Float64(),
        "mean_team_hit_rate_diff": pl.Float64(),
        "mean_team_diff_team_count": pl.Int64(),
    }
)
"""Columns of :func:`compute_outcome_test` (the ``out_outcome_test`` table)."""


def _check_counts(successes: np.ndarray, n: np.ndarray) -> None:
    """Refuse missing, non-finite, negative, fractional or impossible (k > n) counts."""
    for name, values in (("successes", successes), ("n", n)):
        if np.any(~np.isfinite(values)):
            raise ValueError(f"{name} holds missing or non-finite values")
        if np.any(values < 0) or np.any(values != np.floor(values)):
            raise ValueError(f"{name} must hold non-negative whole numbers")
    if np.any(successes > n):
        raise ValueError("counts must satisfy 0 <= successes <= n")


def _check_design_effect(design_effect: np.ndarray) -> None:
    if np.any(~np.isfinite(design_effect) | (design_effect < 1.0)):
        raise ValueError("design effects must be finite and at least 1")


def wilson_interval(
    successes: Sequence[float] | np.ndarray | float,
    n: Sequence[float] | np.ndarray | float,
    level: float = 0.95,
    design_effect: Sequence[float] | np.ndarray | float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for binomial proportions, element-wise.

    Parameters
    ----------
    successes, n : array_like
        Counts of successes and trials (broadcast together): whole numbers with
        ``0 <= successes <= n``.
    level : float, default 0.95
        Confidence level.
    design_effect : array_like, default 1
        Variance of the proportion under clustering over its binomial variance (≥ 1). The
        interval is computed on the effective sample size n / design_effect with the same
        proportion (Korn and Graubard 1998): trials of one person are not independent.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Lower and upper limits, within [0, 1]. Where ``n == 0`` both are NaN (no
        information: the convention of this project, rather than the [0, 1] interval).

    Raises
    ------
    ValueError
        If a count is missing, not finite, negative or fractional, if ``successes > n``, or if
        a design effect is below 1 or not finite.

    References
    ----------
    Wilson, E. B. (1927). Probable inference, the law of succession, and statistical
    inference. *JASA* 22(158), 209-212.
    Newcombe, R. G. (1998). Two-sided confidence intervals for the single proportion:
    comparison of seven methods. *Statistics in Medicine* 17, 857-872 (method 3).
    Korn, E. L. and Graubard, B. I. (1998). Confidence intervals for proportions with small
    expected number of positive counts estimated from survey data. *Survey Methodology*
    24(2), 193-201.
    statsmodels ``proportion_confint(method="wilson")`` computes it.
    """
    k, total, deff = np.broadcast_arrays(
        np.asarray(successes, dtype=float), np.asarray(n, dtype=float),
        np.asarray(design_effect, dtype=float),
    )
    _check_counts(k, total)
    _check_design_effect(deff)
    empty = total == 0
    k_eff, n_eff = k / deff, total / deff
    with np.errstate(divide="ignore", invalid="ignore"):
        low, high = proportion_confint(
            np.where(empty, 0.0, k_eff), np.where(empty, 1.0, n_eff), alpha=1.0 - level,
            method="wilson",
        )
    # NOTE: the Wilson limits are exactly 0 at k = 0 and 1 at k = n; set them so, as
    # floating point lands a hair off (and an interval must contain its estimate).
    low = np.where(empty, np.nan, np.where(k == 0, 0.0, np.clip(low, 0.0, 1.0)))
    high = np.where(empty, np.nan, np.where(k == total, 1.0, np.clip(high, 0.0, 1.0)))
    return low, high


def newcombe_difference(
    successes1: Sequence[float] | np.ndarray | float,
    n1: Sequence[float] | np.ndarray | float,
    successes2: Sequence[float] | np.ndarray | float,
    n2: Sequence[float] | np.ndarray | float,
    level: float = 0.95,
    design_effect1: Sequence[float] | np.ndarray | float = 1.0,
    design_effect2: Sequence[float] | np.ndarray | float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Difference of two independent proportions ``p1 - p2`` with Newcombe's hybrid score interval.

    Combines the Wilson intervals (l_i, u_i) of both proportions (Newcombe 1998, method 10):
    ``low = d - sqrt((p1 - l1)^2 + (u2 - p2)^2)``, ``high = d + sqrt((u1 - p1)^2 + (p2 - l2)^2)``.

    Parameters
    ----------
    successes1, n1, successes2, n2 : array_like
        Counts of the two samples (broadcast together).
    level : float, default 0.95
        Confidence level.
    design_effect1, design_effect2 : array_like, default 1
        Design effects of the two proportions (see `wilson_interval`).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, numpy.ndarray)
        Difference, lower and upper limit (within [-1, 1]); NaN where either n is 0.

    References
    ----------
    Newcombe, R. G. (1998). Interval estimation for the difference between independent
    proportions: comparison of eleven methods. *Statistics in Medicine* 17, 873-890.
    Equals statsmodels ``confint_proportions_2indep(method="newcomb")``.
    """
    k1, t1, k2, t2 = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (successes1, n1, successes2, n2))
    )
    low1, high1 = wilson_interval(k1, t1, level, design_effect1)
    low2, high2 = wilson_interval(k2, t2, level, design_effect2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p1 = np.where(t1 > 0, k1 / np.where(t1 > 0, t1, 1.0), np.nan)
        p2 = np.where(t2 > 0, k2 / np.where(t2 > 0, t2, 1.0), np.nan)
    diff = p1 - p2
    low = diff - np.sqrt((p1 - low1) ** 2 + (high2 - p2) ** 2)
    high = diff + np.sqrt((high1 - p1) ** 2 + (p2 - low2) ** 2)
    return diff, np.clip(low, -1.0, 1.0), np.clip(high, -1.0, 1.0)


def _origin_rank(origin_order: Sequence[str]) -> pl.Expr:
    codes = list(origin_order)
    return (
        pl.col("origin")
        .replace_strict(codes, list(range(len(codes))), default=len(codes), return_dtype=pl.Int32)
        .alias("_origin_rank")
    )


def sort_output_rows(
    frame: pl.DataFrame, *, origin_order: Sequence[str] = (), all_teams: str = "ALL"
) -> pl.DataFrame:
    """Order rows by query_type, team (``all_teams`` last), origin — the house order.

    Origins follow ``origin_order`` (the pipeline passes ``assets.schema.ORIGIN_CODES``);
    origins not in it come after, alphabetically.
    """
    return (
        frame.with_columns(
            _origin_rank(origin_order), (pl.col("team_code") == all_teams).alias("_is_all"))
        .sort("query_type", "_is_all", "team_code", "_origin_rank", "origin")
        .drop("_origin_rank", "_is_all")
    )


def _nan_to_null(values: np.ndarray) -> pl.Series:
    return pl.Series(values, dtype=pl.Float64).fill_nan(None)


def _design_effects(cells: pl.DataFrame) -> np.ndarray:
    """Design effect of each cell's hit rate with persons as clusters (see compute_outcome_test)."""
    n = cells["query_count"].to_numpy().astype(float)
    k = cells["hit_count"].to_numpy().astype(float)
    clusters = cells["_clusters"].to_numpy().astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        residual = cells["_hh"].to_numpy() - 2 * p * cells["_hn"].to_numpy() + p**2 * cells[
            "_nn"].to_numpy()
        clustered = np.maximum(residual, 0.0) / n**2
        binomial = p * (1 - p) / n
        deff = clustered / binomial
    defined = (n > 0) & (k > 0) & (k < n) & (clusters > 1)
    return np.where(defined, np.maximum(1.0, np.nan_to_num(deff, nan=1.0)), 1.0)


def compute_outcome_test(
    queries: pl.DataFrame | pl.LazyFrame,
    *,
    reference: str = "NL",
    level: float = 0.95,
    clustered: bool = True,
    origin_order: Sequence[str] = (),
    all_teams: str = "ALL",
) -> pl.DataFrame:
    """Return one row per query_type × team_code (each team and ``ALL``) × origin: hit rates.

    Only linked queries (``is_linked`` and a known ``origin``) count. Per row:

    - ``query_count``: queries with the hit field filled in (the denominator);
      ``hit_count``: of which ``hit`` is true; ``hit_missing_count``: queries of the cell
      whose hit field is empty (not in the denominator).
    - ``hit_rate`` = hit_count / query_count with a Wilson interval.
    - ``hit_rate_diff`` = hit_rate − the reference origin's hit_rate in the same query_type
      and team_code, with Newcombe's hybrid score interval; null on the reference's own rows
      and where either side has no filled-in hit field.
    - On ``ALL`` rows only (null elsewhere): ``team_count``, the teams where the origin has at
      least one query with a filled-in hit field; ``mean_team_hit_rate``, the unweighted
      mean of those teams' hit rates (the Open Policing Project's aggregation, which weighs
      each team equally so that large teams do not dominate); ``mean_team_hit_rate_diff``,
      the unweighted mean over teams of (team hit rate − reference team hit rate), taken
      over the ``mean_team_diff_team_count`` teams where both have such queries. The
      team-mean rows carry no interval: the pooled row carries the inference.

    A person queried in several teams counts in each team where the query happened, and
    once per query in ``ALL``.

    Repeat queries of one person are not independent trials (with ``clustered``, the default):
    every interval uses the effective sample size queries / design_effect (Korn and Graubard
    1998), the design effect being the variance of the hit rate with persons as clusters
    (the linearised ratio-estimator variance Σ(h_i − p̂·n_i)²/n² over persons i) over its
    binomial variance, at least 1; it is exactly 1 when every person has one query. With no
    hits, only hits or a single person the design effect cannot be estimated and is 1 (Korn
    and Graubard's convention).

    Parameters
    ----------
    queries : polars.DataFrame or polars.LazyFrame
        Core query table (person and/or plate queries): needs ``query_type``,
        ``team_code``, ``is_linked``, ``origin``, ``person_key`` and ``hit``.
    reference : str, default "NL"
        Reference origin of the differences.
    level : float, default 0.95
        Confidence level.
    clustered : bool, default True
        Allow for repeat queries of one person (persons as clusters); False treats every query
        as an independent trial (`interval_method` says which).
    origin_order : sequence of str
        Order of the origins in the output (others after, alphabetically).
    all_teams : str, default "ALL"
        ``team_code`` of the whole-area rows.

    Returns
    -------
    polars.DataFrame
        Columns of :data:`OUTPUT_SCHEMA`, sorted by query_type, team_code (``ALL`` last)
        and origin (``origin_order``).

    References
    ----------
    Knowles, J., Persico, N. & Todd, P. (2001). Racial bias in motor vehicle searches:
    theory and evidence. *Journal of Political Economy* 109(1), 203-229.
    Pierson, E. et al. (2020). A large-scale analysis of racial disparities in police
    stops across the United States. *Nature Human Behaviour* 4, 736-745.
    """
    linked = (
        queries.lazy()
        .filter(pl.col("is_linked") & pl.col("origin").is_not_null())
        .select("query_type", "team_code", "origin", "person_key", "hit")
    )
    # NOTE: one row per person and cell first: the person is the cluster of the interval.
    per_person = [
        pl.col("hit").is_not_null().sum().cast(pl.Int64).alias("_n"),
        pl.col("hit").fill_null(False).sum().cast(pl.Int64).alias("_h"),
        pl.col("hit").is_null().sum().cast(pl.Int64).alias("_missing"),
    ]
    counts = [
        pl.col("_n").sum().alias("query_count"),
        pl.col("_h").sum().alias("hit_count"),
        pl.col("_missing").sum().alias("hit_missing_count"),
        (pl.col("_n") > 0).sum().cast(pl.Int64).alias("_clusters"),
        (pl.col("_h").cast(pl.Float64) ** 2).sum().alias("_hh"),
        (pl.col("_h").cast(pl.Float64) * pl.col("_n")).sum().alias("_hn"),
        (pl.col("_n").cast(pl.Float64) ** 2).sum().alias("_nn"),
    ]
    # NOTE: a person's counts over the whole area are the sums of their counts per team: the
    # query rows are grouped once (at 50M queries 21.7 / 21.3 → 14.4 / 14.0 s, the same table),
    # on the text's categorical codes, turned back into text once summed per cell.
    persons = (linked.with_columns(pl.col(pl.String).cast(pl.Categorical))
               .group_by("query_type", "team_code", "origin", "person_key")
               .agg(per_person).collect())
    per_team = persons.lazy().group_by("query_type", "team_code", "origin").agg(counts)
    whole_area = (
        persons.lazy().group_by("query_type", "origin", "person_key")
        .agg(pl.col("_n", "_h", "_missing").sum())
        .group_by("query_type", "origin").agg(counts)
        .with_columns(pl.lit(all_teams).alias("team_code"))
    )
    per_team, whole_area = (frame.with_columns(pl.col(pl.Categorical).cast(pl.String))
                            for frame in pl.collect_all([per_team, whole_area]))
    del persons
    cells = pl.concat([per_team, whole_area.select(per_team.columns)])
    deff = _design_effects(cells) if clustered else np.ones(cells.height)
    cells = cells.with_columns(pl.Series("design_effect", deff, dtype=pl.Float64))

    ref = cells.filter(pl.col("origin") == reference).select(
        "query_type",
        "team_code",
        pl.col("query_count").alias("_ref_query_count"),
        pl.col("hit_count").alias("_ref_hit_count"),
        pl.col("design_effect").alias("_ref_design_effect"),
    )
    cells = cells.join(ref, on=["query_type", "team_code"], how="left")
    k = cells["hit_count"].to_numpy().astype(float)
    n = cells["query_count"].to_numpy().astype(float)
    ref_k = cells["_ref_hit_count"].fill_null(0).to_numpy().astype(float)
    ref_n = cells["_ref_query_count"].fill_null(0).to_numpy().astype(float)
    ref_deff = cells["_ref_design_effect"].fill_null(1.0).to_numpy()
    low, high = wilson_interval(k, n, level, deff)
    diff, diff_low, diff_high = newcombe_difference(k, n, ref_k, ref_n, level, deff, ref_deff)
    is_ref = (cells["origin"] == reference).to_numpy()
    diff, diff_low, diff_high = (np.where(is_ref, np.nan, v) for v in (diff, diff_low, diff_high))
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(n > 0, k / np.where(n > 0, n, 1.0), np.nan)
    cells = cells.drop("_ref_query_count", "_ref_hit_count", "_ref_design_effect").with_columns(
        _nan_to_null(rate).alias("hit_rate"),
        _nan_to_null(low).alias("hit_rate_ci_low"),
        _nan_to_null(high).alias("hit_rate_ci_high"),
        _nan_to_null(diff).alias("hit_rate_diff"),
        _nan_to_null(diff_low).alias("hit_rate_diff_ci_low"),
        _nan_to_null(diff_high).alias("hit_rate_diff_ci_high"),
        pl.lit("person_clustered" if clustered else "independent_events").alias("interval_method"),
    )

    team_rates = per_team.filter(pl.col("query_count") > 0).with_columns(
        (pl.col("hit_count") / pl.col("query_count")).alias("_rate")
    )
    team_means = team_rates.group_by("query_type", "origin").agg(
        pl.len().cast(pl.Int64).alias("team_count"),
        fixed_point_mean(pl.col("_rate")).alias("mean_team_hit_rate"),
    )
    paired = team_rates.join(
        team_rates.filter(pl.col("origin") == reference).select(
            "query_type", "team_code", pl.col("_rate").alias("_ref_rate")
        ),
        on=["query_type", "team_code"],
        how="inner",
    ).filter(pl.col("origin") != reference)
    team_diffs = paired.group_by("query_type", "origin").agg(
        fixed_point_mean(pl.col("_rate") - pl.col("_ref_rate")).alias("mean_team_hit_rate_diff"),
        pl.len().cast(pl.Int64).alias("mean_team_diff_team_count"),
    )
    all_rows = (
        team_means.join(team_diffs, on=["query_type", "origin"], how="left")
        .with_columns(pl.lit(all_teams).alias("team_code"))
    )
    is_all = pl.col("team_code") == all_teams
    result = cells.join(all_rows, on=["query_type", "team_code", "origin"], how="left").with_columns(
        pl.when(is_all).then(pl.col("team_count").fill_null(0)).alias("team_count"),
        pl.when(is_all & (pl.col("origin") != reference))
        .then(pl.col("mean_team_diff_team_count").fill_null(0))
        .alias("mean_team_diff_team_count"),
    )
    return sort_output_rows(result.select(OUTPUT_SCHEMA.names()).cast(dict(OUTPUT_SCHEMA)),
                            origin_order=origin_order, all_teams=all_teams)
