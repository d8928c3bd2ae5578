"""Age-sex standardised rate ratios: Mantel–Haenszel and indirect standardisation (METHODS.md §2).

Pure and Dagster-free. Police contact concentrates on young men, and origin groups differ in
age structure, so a crude ratio mixes the origin contrast with the age-sex contrast. Both
estimators here compare like with like within strata s = sex × age band:

* `mantel_haenszel_rate_ratio` / `summarise_mantel_haenszel` (used by
  `assets.stats.rates.rate_ratio_table` with ``strata=``): a weighted average of the stratum
  ratios, with the Greenland–Robins variance that stays valid with many sparse strata;
* `standardised_incidence_ratio`: observed over expected events, the expected count applying the
  reference group's stratum rates to the group's own exposure, with Garwood's exact interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import polars as pl

from scipy import stats

from assets.stats.exact import fixed_point_sum
from assets.stats.rates import (
    METHOD_REFERENCE,
    RateRatioResult,
    _as_names,
    _check_level,
    _validate_long_frame,
)

METHOD_MH = "mantel-haenszel"
"""Method label: Mantel–Haenszel rate ratio, Greenland–Robins variance, Wald CI on log scale."""
METHOD_MH_CLUSTERED = "mantel-haenszel-cluster-robust"
"""Method label: Mantel–Haenszel rate ratio, cluster-robust (persons) variance, Wald CI."""
METHOD_MH_RISK = "mantel-haenszel-risk"
"""Method label: Mantel–Haenszel risk ratio of persons, Greenland–Robins binomial variance."""
METHOD_SIR = "indirect-garwood"
"""Method label: standardised incidence ratio (observed/expected) with Garwood's exact CI."""

SIR_COLUMNS = ("count", "expected", "ratio", "ci_low", "ci_high", "p_value", "method")
"""Columns of `standardised_incidence_ratio` after the `by` and group columns, in order."""


def _mh_finish(
    numerator: np.ndarray, denominator: np.ndarray, log_variance: np.ndarray, level: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ratio, Wald CI and p-value from R, S and the variance of log(R/S)."""
    z_crit = stats.norm.ppf((1.0 + level) / 2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = numerator / denominator
        se = np.sqrt(log_variance)
        log_ratio = np.log(ratio)
        ok = (numerator > 0) & (denominator > 0)
        ci_low = np.where(ok, np.exp(log_ratio - z_crit * se), np.nan)
        ci_high = np.where(ok, np.exp(log_ratio + z_crit * se), np.nan)
        p_value = np.where(ok, 2.0 * stats.norm.sf(np.abs(log_ratio / se)), np.nan)
    # NOTE: conventions for empty sums: R = 0 < S gives ratio 0, S = 0 < R gives inf (no
    # interval or test either way: the log-scale variance is infinite); R = S = 0 gives NaN.
    ratio = np.where((numerator == 0) & (denominator == 0), np.nan, ratio)
    return ratio, ci_low, ci_high, p_value


def mantel_haenszel_rate_ratio(
    count: Sequence[float] | np.ndarray,
    exposure: Sequence[float] | np.ndarray,
    ref_count: Sequence[float] | np.ndarray,
    ref_exposure: Sequence[float] | np.ndarray,
    level: float = 0.95,
) -> RateRatioResult:
    """Mantel–Haenszel rate ratio over strata, with the Greenland–Robins interval.

    With a_s, T1_s the group's events and person-time in stratum s, b_s, T0_s the reference's,
    and T_s = T1_s + T0_s::

        RR_MH = Σ a_s·T0_s/T_s  ÷  Σ b_s·T1_s/T_s
        Var(log RR_MH) = Σ (a_s + b_s)·T1_s·T0_s/T_s²  ÷  [(Σ a_s·T0_s/T_s)(Σ b_s·T1_s/T_s)]

    and the interval is exp(log RR_MH ± z·SE); the p-value uses the same z.

    Parameters
    ----------
    count, exposure, ref_count, ref_exposure : one element per stratum.
    level : confidence level.

    Returns
    -------
    RateRatioResult
        count/exposure/ref_count/ref_exposure are the sums over all strata given.

    Notes
    -----
    * A stratum where both groups have zero exposure is dropped (T_s = 0).
    * A stratum with exposure for one group only is dropped too: with coherent data (no events
      without exposure) it adds zero to every sum anyway, and dropping it keeps events recorded
      against a zero (e.g. CBS-rounded) population from entering the estimate.
    * Empty sums never raise: R = 0 < S gives ratio 0, S = 0 < R gives inf, both give NaN; in
      those cases the interval and p-value are NaN.

    References
    ----------
    .. [1] Greenland, S. and Robins, J. M. (1985). Estimation of a common effect parameter from
       sparse follow-up data. Biometrics 41(1), 55–68.
    .. [2] Rothman, K. J., Greenland, S. and Lash, T. L. (2008). Modern Epidemiology, 3rd ed.,
       ch. 15, Table 15-2 and the accompanying formulas.
    """
    level = _check_level(level)
    a, t1, b, t0 = (np.asarray(x, dtype=float) for x in (count, exposure, ref_count, ref_exposure))
    if not (a.shape == t1.shape == b.shape == t0.shape) or a.ndim != 1:
        raise ValueError("count, exposure, ref_count and ref_exposure must be 1-d of equal length")
    for name, values in (("count", a), ("exposure", t1), ("ref_count", b), ("ref_exposure", t0)):
        if not np.all(np.isfinite(values)) or np.any(values < 0):
            raise ValueError(f"{name} must be finite and non-negative in every stratum")
    usable = (t1 > 0) & (t0 > 0)
    total = t1 + t0
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(usable, a * t0 / total, 0.0).sum()
        s = np.where(usable, b * t1 / total, 0.0).sum()
        v = np.where(usable, (a + b) * t1 * t0 / total**2, 0.0).sum()
        log_variance = v / (r * s)
    ratio, ci_low, ci_high, p_value = _mh_finish(
        np.array([r]), np.array([s]), np.array([log_variance]), level
    )
    return RateRatioResult(
        count=int(a.sum()) if np.all(a == np.floor(a)) else float(a.sum()),  # type: ignore[arg-type]
        exposure=float(t1.sum()),
        ref_count=int(b.sum()) if np.all(b == np.floor(b)) else float(b.sum()),  # type: ignore[arg-type]
        ref_exposure=float(t0.sum()),
        level=level,
        ratio=float(ratio[0]),
        ci_low=float(ci_low[0]),
        ci_high=float(ci_high[0]),
        p_value=float(p_value[0]),
        method=METHOD_MH,
    )


def summarise_mantel_haenszel(
    paired: pl.DataFrame,
    *,
    keys: Sequence[str],
    strata: Sequence[str],
    level: float = 0.95,
    variance: Literal["rate", "risk"] = "rate",
    cross_products: pl.DataFrame | None = None,
    group: str | None = None,
    reference: object = None,
) -> pl.DataFrame:
    """One row per key: the Mantel–Haenszel ratio over the strata rows of that key.

    `paired` holds one row per key × stratum with columns ``count``, ``exposure`` (the group)
    and ``ref_count``, ``ref_exposure`` (the reference in the same stratum). The point estimate is
    RR_MH = R/S with R = Σ a·T0/T and S = Σ b·T1/T (strata where either exposure is zero are
    dropped; empty sums give 0 / inf / null ratios with a null interval). The variance of
    log RR_MH, and so the Wald interval and the p-value, is:

    * ``variance="rate"``: Greenland and Robins' rate-ratio variance
      Σ (a+b)·T1·T0/T² ÷ (R·S) (events independent; method ``mantel-haenszel``);
    * ``variance="rate"`` with `cross_products`: the cluster-robust (delta-method) variance
      Var(R)/R² + Var(S)/S², Var(R) = Σ_{s,s'} w_s w_s' G_ss' of the group's per-person cross
      products and likewise for S with the reference's (method
      ``mantel-haenszel-cluster-robust``); `group` and `reference` name the group column and
      the reference value of `cross_products`;
    * ``variance="risk"``: counts are persons among T residents (Bernoulli trials), Greenland
      and Robins' risk-ratio variance Σ (M1·T1·T0 − a·b·T)/T² ÷ (R·S), M1 = a + b
      (method ``mantel-haenszel-risk``). A stratum term below zero (more persons than
      residents, e.g. visitors counted against residents) is replaced by its rate-ratio term.

    Returns ``*keys, ratio, ci_low, ci_high, p_value, design_effect, method`` sorted by keys;
    undefined values are null, not NaN. design_effect is the cluster-robust variance over the
    Greenland–Robins rate variance's Poisson counterpart Σw²a/R² + Σu²b/S² (1 otherwise).

    References
    ----------
    .. [1] Greenland, S. and Robins, J. M. (1985). Biometrics 41(1), 55–68.
    .. [2] Liang, K.-Y. and Zeger, S. L. (1986). Biometrika 73(1), 13–22.
    """
    from assets.stats.clusters import CROSS_COLUMN, SECOND_SUFFIX

    level = _check_level(level)
    keys, strata = list(keys), list(strata)
    if variance not in ("rate", "risk"):
        raise ValueError(f"variance must be 'rate' or 'risk', got {variance!r}")
    if cross_products is not None and (variance != "rate" or group is None):
        raise ValueError("cross_products need variance='rate' and the group column")
    total = pl.col("exposure") + pl.col("ref_exposure")
    usable = (pl.col("exposure") > 0) & (pl.col("ref_exposure") > 0)
    a, b = pl.col("count"), pl.col("ref_count")
    t1, t0 = pl.col("exposure"), pl.col("ref_exposure")
    rate_term = (a + b) * t1 * t0 / total.pow(2)
    if variance == "risk":
        risk_term = ((a + b) * t1 * t0 - a * b * total) / total.pow(2)
        v_term = pl.when(risk_term >= 0).then(risk_term).otherwise(rate_term)
    else:
        v_term = rate_term
    # NOTE: fixed-point sums: a group-by adds floats in varying order, and the same inputs
    # must give byte-identical outputs (assets.stats.exact).
    weighted = paired.filter(usable).with_columns(
        (t0 / total).alias("_w"), (t1 / total).alias("_u"),
    )
    sums = (
        weighted.with_columns(
            (a * pl.col("_w")).alias("_r"),
            (b * pl.col("_u")).alias("_s"),
            v_term.alias("_v"),
            (a * pl.col("_w") ** 2).alias("_pr"),
            (b * pl.col("_u") ** 2).alias("_ps"),
        )
        .group_by(keys)
        .agg(fixed_point_sum(pl.col(c)).alias(c) for c in ("_r", "_s", "_v", "_pr", "_ps"))
    )
    if cross_products is not None:
        by = [k for k in keys if k != group]
        second = [c + SECOND_SUFFIX for c in strata]
        w = weighted.select(*keys, *strata, "_w", "_u")
        w2 = w.rename({c: c2 for c, c2 in zip(strata, second)} | {"_w": "_w2", "_u": "_u2"})
        own = (
            cross_products.join(w, on=[*keys, *strata], how="inner", nulls_equal=True)
            .join(w2, on=[*keys, *second], how="inner", nulls_equal=True)
            .group_by(keys)
            .agg(fixed_point_sum(pl.col("_w") * pl.col("_w2") * pl.col(CROSS_COLUMN)).alias("_vr"))
        )
        ref_cross = cross_products.filter(pl.col(group) == reference).drop(group)
        of_ref = (
            ref_cross.join(w.drop("_w"), on=[*by, *strata], how="inner", nulls_equal=True)
            .join(w2.drop("_w2"), on=[*by, group, *second], how="inner", nulls_equal=True)
            .group_by(keys)
            .agg(fixed_point_sum(pl.col("_u") * pl.col("_u2") * pl.col(CROSS_COLUMN)).alias("_vs"))
        )
        sums = (
            sums.join(own, on=keys, how="left", nulls_equal=True)
            .join(of_ref, on=keys, how="left", nulls_equal=True)
            .with_columns(pl.col("_vr", "_vs").fill_null(0.0))
        )
    # NOTE: keys whose strata were all dropped still get a row (all sums zero).
    sums = (
        paired.select(keys)
        .unique()
        .join(sums, on=keys, how="left", nulls_equal=True)
        .with_columns(pl.exclude(keys).fill_null(0.0))
        .sort(keys)
    )
    r = sums["_r"].to_numpy().astype(float)
    s_ = sums["_s"].to_numpy().astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        poisson = sums["_pr"].to_numpy() / r**2 + sums["_ps"].to_numpy() / s_**2
        if cross_products is not None:
            log_variance = sums["_vr"].to_numpy() / r**2 + sums["_vs"].to_numpy() / s_**2
            deff = np.where(poisson > 0, log_variance / poisson, np.nan)
            method = METHOD_MH_CLUSTERED
        else:
            log_variance = sums["_v"].to_numpy().astype(float) / (r * s_)
            deff = np.ones(r.shape)
            method = METHOD_MH_RISK if variance == "risk" else METHOD_MH
    ratio, ci_low, ci_high, p_value = _mh_finish(r, s_, log_variance, level)
    return sums.select(keys).with_columns(
        pl.Series("ratio", ratio, dtype=pl.Float64).fill_nan(None),
        pl.Series("ci_low", ci_low, dtype=pl.Float64).fill_nan(None),
        pl.Series("ci_high", ci_high, dtype=pl.Float64).fill_nan(None),
        pl.Series("p_value", p_value, dtype=pl.Float64).fill_nan(None),
        pl.Series("design_effect", deff, dtype=pl.Float64).fill_nan(None),
        pl.lit(method).alias("method"),
    )


def garwood_interval(
    observed: np.ndarray, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Garwood) confidence limits for a Poisson mean, element-wise.

    lower = χ²_{α/2}(2O)/2 (0 when O = 0), upper = χ²_{1−α/2}(2O + 2)/2.

    References
    ----------
    .. [1] Garwood, F. (1936). Fiducial limits for the Poisson distribution. Biometrika
       28(3/4), 437–442.
    """
    level = _check_level(level)
    observed = np.asarray(observed, dtype=float)
    alpha = 1.0 - level
    with np.errstate(invalid="ignore"):
        lower = np.where(observed > 0, stats.chi2.ppf(alpha / 2, 2 * observed) / 2, 0.0)
    upper = stats.chi2.ppf(1 - alpha / 2, 2 * observed + 2) / 2
    return lower, upper


def _poisson_two_sided_p(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Exact two-sided Poisson test of mean = expected: twice the smaller tail, capped at 1."""
    lower_tail = stats.poisson.cdf(observed, expected)
    upper_tail = stats.poisson.sf(observed - 1, expected)
    return np.minimum(1.0, 2.0 * np.minimum(lower_tail, upper_tail))


def standardised_incidence_ratio(
    frame: pl.DataFrame,
    *,
    count: str,
    exposure: str,
    group: str,
    reference: object,
    strata: str | Sequence[str],
    by: str | Sequence[str] = (),
    level: float = 0.95,
) -> pl.DataFrame:
    """One row per `by` cell × group: indirectly standardised ratio of observed to expected.

    E_g = Σ_s P_gs · r_s with r_s = N_ref,s / P_ref,s the reference group's rate in stratum s of
    the same `by` cell; SIR_g = N_g / E_g with Garwood's exact interval N-limits / E_g, and an
    exact two-sided Poisson test of N_g against E_g (twice the smaller tail).

    Parameters
    ----------
    frame : long frame with counts and exposures per `by` × group × stratum.
    count, exposure, group, reference, by : as in `assets.stats.rates.rate_ratio_table`.
    strata : standardisation strata (e.g. ``("sex", "age_band")``); required.
    level : confidence level.

    Returns
    -------
    pl.DataFrame
        Columns ``*by, <group>, count, expected, ratio, ci_low, ci_high, p_value, method``,
        sorted by `by` then group. ``count`` is the observed count in the strata used.

    Notes
    -----
    * A stratum where the reference has no exposure has no reference rate: it is dropped from
      both the observed and the expected count of every group in that `by` cell.
    * E_g = 0 (no exposure in usable strata, or reference rates all zero) gives ratio inf
      (N_g > 0) or null (N_g = 0), with a null interval and p-value.
    * The reference rates are treated as known: the interval ignores their sampling error,
      which is small when the reference group is large (NL residents) and otherwise
      understates the uncertainty; the Mantel–Haenszel ratio does not have this limitation.
    * The reference group's own row has ratio 1 (observed = expected by construction), method
      ``reference`` and no interval.

    References
    ----------
    .. [1] Breslow, N. E. and Day, N. E. (1987). Statistical Methods in Cancer Research II,
       ch. 2 (SMR and its exact limits).
    .. [2] Garwood, F. (1936). Biometrika 28(3/4), 437–442.
    """
    level = _check_level(level)
    by = _as_names(by)
    strata = _as_names(strata)
    if not strata:
        raise ValueError("standardised_incidence_ratio needs at least one stratum column")
    _validate_long_frame(
        frame, count=count, exposure=exposure, keys=(*by, group, *strata), whole_counts=True
    )
    count_dtype = pl.Int64 if frame.schema[count].is_integer() else pl.Float64
    cells = frame.group_by([*by, group, *strata]).agg(
        pl.col(count).sum().cast(count_dtype).alias("count"),
        pl.col(exposure).sum().cast(pl.Float64).alias("exposure"),
    )
    ref_rates = (
        cells.filter((pl.col(group) == reference) & (pl.col("exposure") > 0))
        .select(*by, *strata, (pl.col("count") / pl.col("exposure")).alias("_ref_rate"))
    )
    present = frame.select(*by).unique() if by else None
    if ref_rates.height == 0 or (
        by and present.join(ref_rates.select(*by).unique(), on=list(by), how="anti", nulls_equal=True).height
    ):
        raise ValueError(
            f"reference group {reference!r} has no exposure in some `by` cell: "
            "its stratum rates, the standard of the expected counts, are missing"
        )
    used = cells.join(ref_rates, on=[*by, *strata], how="inner", nulls_equal=True)
    summary = (
        used.group_by([*by, group])
        .agg(
            pl.col("count").sum().alias("count"),
            fixed_point_sum(pl.col("exposure") * pl.col("_ref_rate")).alias("expected"),
        )
    )
    # NOTE: groups with no usable stratum keep a row with zero observed and expected.
    summary = (
        cells.select(*by, group)
        .unique()
        .join(summary, on=[*by, group], how="left", nulls_equal=True)
        .with_columns(
            pl.col("count").fill_null(0).cast(count_dtype), pl.col("expected").fill_null(0.0)
        )
        .sort([*by, group])
    )
    observed = summary["count"].to_numpy().astype(float)
    expected = summary["expected"].to_numpy().astype(float)
    low_count, high_count = garwood_interval(observed, level)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(expected > 0, observed / expected, np.where(observed > 0, np.inf, np.nan))
        ci_low = np.where(expected > 0, low_count / expected, np.nan)
        ci_high = np.where(expected > 0, high_count / expected, np.nan)
        p_value = np.where(expected > 0, _poisson_two_sided_p(observed, expected), np.nan)
    is_ref = pl.col(group) == reference
    result = summary.with_columns(
        pl.Series("ratio", ratio, dtype=pl.Float64),
        pl.Series("ci_low", ci_low, dtype=pl.Float64),
        pl.Series("ci_high", ci_high, dtype=pl.Float64),
        pl.Series("p_value", p_value, dtype=pl.Float64),
        pl.lit(METHOD_SIR).alias("method"),
    ).with_columns(
        pl.when(is_ref).then(pl.lit(1.0)).otherwise(pl.col("ratio")).alias("ratio"),
        pl.when(is_ref).then(None).otherwise(pl.col("ci_low")).alias("ci_low"),
        pl.when(is_ref).then(None).otherwise(pl.col("ci_high")).alias("ci_high"),
        pl.when(is_ref).then(None).otherwise(pl.col("p_value")).alias("p_value"),
        pl.when(is_ref).then(pl.lit(METHOD_REFERENCE)).otherwise(pl.col("method")).alias("method"),
    )
    result = result.with_columns(pl.col("ratio", "ci_low", "ci_high", "p_value").fill_nan(None))
    return result.select(*by, group, *SIR_COLUMNS).sort([*by, group])
