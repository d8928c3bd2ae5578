"""Many teams, small cells: shrinkage, multiple testing, funnel limits, missing-origin bounds.

Pure and Dagster-free (METHODS.md §4 and §8).

* `shrink_log_ratios` / `shrink_log_ratios_within`: empirical-Bayes normal random-effects
  shrinkage of team log ratios toward the all-team mean, τ² by REML or DerSimonian–Laird;
* `compute_log_rate_ratios`: Wald log rate ratios and standard errors to feed the shrinkage,
  with an optional 0.5 continuity correction for zero cells;
* `bh_q_values`: Benjamini–Hochberg q-values, null-safe;
* `funnel_limits`, `estimate_funnel_overdispersion`: control limits for a ratio against its
  expected count (Spiegelhalter 2005) with a multiplicative overdispersion factor;
* `missing_origin_bounds`: worst-case bounds on a rate ratio when some queries cannot be
  linked to an origin.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import polars as pl
from scipy import optimize, stats
from statsmodels.stats.meta_analysis import combine_effects

TauMethod = Literal["REML", "DL"]

SHRINKAGE_COLUMNS = (
    "shrunk_log_ratio",
    "posterior_sd",
    "shrunk_ratio",
    "shrunk_ci_low",
    "shrunk_ci_high",
    "shrinkage_weight",
    "mean_log_ratio",
    "tau2",
    "tau2_method",
)
"""Columns that `shrink_log_ratios` adds to its inputs, in order."""


def _to_float_array(values: object) -> np.ndarray:
    """Array of floats with nulls as NaN (accepts polars Series, numpy arrays, lists, scalars)."""
    if isinstance(values, pl.Series):
        return values.cast(pl.Float64).fill_null(np.nan).to_numpy().astype(float)
    if isinstance(values, (list, tuple)):
        return np.array([np.nan if v is None else v for v in values], dtype=float)
    return np.atleast_1d(np.asarray(values, dtype=float))


def _reml_tau2(y: np.ndarray, v: np.ndarray) -> float:
    """REML estimate of the between-unit variance τ² of y_i ~ N(μ, v_i + τ²).

    Maximises the restricted log-likelihood
    −½ Σ log(v_i + τ²) − ½ log Σ w_i − ½ Σ w_i (y_i − μ̂)², w_i = 1/(v_i + τ²),
    over τ² ≥ 0 with scipy's bounded scalar minimiser (tolerance 1e-10 on τ²).
    """

    def negative_restricted_loglik(tau2: float) -> float:
        w = 1.0 / (v + tau2)
        mu = np.sum(w * y) / np.sum(w)
        return 0.5 * (np.sum(np.log(v + tau2)) + np.log(np.sum(w)) + np.sum(w * (y - mu) ** 2))

    # NOTE: τ² cannot exceed the total spread much: the sample variance plus the largest
    # sampling variance, times ten, bounds the search generously.
    upper = 10.0 * (np.var(y, ddof=1) + np.max(v)) + 1e-8
    solution = optimize.minimize_scalar(
        negative_restricted_loglik,
        bounds=(0.0, upper),
        method="bounded",
        options={"xatol": 1e-10, "maxiter": 2000},
    )
    tau2 = float(solution.x)
    # NOTE: the bounded search never returns the endpoint exactly; keep 0 when it is better.
    if negative_restricted_loglik(0.0) <= negative_restricted_loglik(tau2):
        return 0.0
    return tau2


def estimate_tau2(
    log_ratio: object, std_error: object, method: TauMethod = "REML"
) -> float:
    """Between-unit variance τ² of log ratios under a normal random-effects model.

    Units with a null/non-finite estimate or standard error, or a zero standard error, are
    left out. With fewer than two usable units τ² is undefined (NaN).

    Parameters
    ----------
    log_ratio, std_error : per-unit estimates and their standard errors.
    method : "REML" (restricted maximum likelihood, scipy bounded optimiser) or "DL"
        (DerSimonian–Laird moment estimator, via statsmodels' `combine_effects`).

    References
    ----------
    .. [1] DerSimonian, R. and Laird, N. (1986). Meta-analysis in clinical trials. Controlled
       Clinical Trials 7(3), 177–188.
    .. [2] Viechtbauer, W. (2005). Bias and efficiency of meta-analytic variance estimators in
       the random-effects model. J. Educ. Behav. Stat. 30(3), 261–293 (REML).
    """
    y = _to_float_array(log_ratio)
    se = _to_float_array(std_error)
    usable = np.isfinite(y) & np.isfinite(se) & (se > 0)
    y, v = y[usable], se[usable] ** 2
    if y.size < 2:
        return float("nan")
    if method == "DL":
        # NOTE: statsmodels 0.15 returns the untruncated moment estimate (Q − df)/c, which is
        # negative when the units vary less than their standard errors imply, and warns while
        # using it. DerSimonian–Laird truncate at zero; so do we.
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            moment = float(combine_effects(y, v, method_re="chi2").tau2)
        return max(0.0, moment)
    if method == "REML":
        return _reml_tau2(y, v)
    raise ValueError(f"method must be 'REML' or 'DL', got {method!r}")


def shrink_log_ratios(
    log_ratio: object,
    std_error: object,
    level: float = 0.95,
    method: TauMethod = "REML",
) -> pl.DataFrame:
    """One row per unit (input order): its log ratio shrunk toward the mean of all units.

    Model: y_i ~ N(θ_i, s_i²), θ_i ~ N(μ, τ²). With τ² estimated (`estimate_tau2`) and
    μ̂ = Σ w_i y_i / Σ w_i, w_i = 1/(s_i² + τ²), the empirical-Bayes posterior of θ_i has

    * mean μ̂ + B_i (y_i − μ̂), with shrinkage weight B_i = τ² / (τ² + s_i²);
    * variance B_i s_i² + (1 − B_i)² / Σ w_j (the second term carries the uncertainty of μ̂;
      the uncertainty of τ² is ignored, so intervals are slightly too narrow with few units).

    The interval is mean ± z·sd on the log scale, exponentiated for the ratio columns.

    Parameters
    ----------
    log_ratio, std_error : per-unit log rate ratios and standard errors (array-like or polars
        Series, nulls allowed).
    level : confidence level of the posterior interval.
    method : "REML" (default) or "DL" for τ².

    Returns
    -------
    pl.DataFrame
        ``log_ratio, std_error`` as given plus ``shrunk_log_ratio, posterior_sd, shrunk_ratio,
        shrunk_ci_low, shrunk_ci_high, shrinkage_weight`` (B_i), ``mean_log_ratio`` (μ̂),
        ``tau2`` and ``tau2_method`` (the last three repeated on every row).

    Notes
    -----
    Zero-count convention: a unit whose log ratio or standard error is null, NaN or infinite
    (a zero count in the group or the reference) is excluded from the estimation of τ² and μ̂
    and gets null shrinkage columns; it is never silently given a value. To include such
    units, compute their log ratios with a 0.5 continuity correction first
    (`compute_log_rate_ratios(..., continuity=0.5)`). With fewer than two usable units nothing
    is shrunk (all shrinkage columns null, tau2 null).

    References
    ----------
    .. [1] DerSimonian, R. and Laird, N. (1986). Controlled Clinical Trials 7(3), 177–188.
    .. [2] Morris, C. N. (1983). Parametric empirical Bayes inference: theory and
       applications. JASA 78(381), 47–55.
    .. [3] Gelman, A., Fagan, J. and Kiss, A. (2007). JASA 102(479), 813–823 (multilevel
       shrinkage of precinct-level stop rates).
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
    if method not in ("REML", "DL"):
        raise ValueError(f"method must be 'REML' or 'DL', got {method!r}")
    y = _to_float_array(log_ratio)
    se = _to_float_array(std_error)
    if y.shape != se.shape:
        raise ValueError("log_ratio and std_error must have the same length")
    if np.any(se[np.isfinite(se)] < 0):
        raise ValueError("std_error must not be negative")
    usable = np.isfinite(y) & np.isfinite(se) & (se > 0)
    tau2 = estimate_tau2(y, se, method=method)
    n = y.size
    shrunk = np.full(n, np.nan)
    sd = np.full(n, np.nan)
    weight = np.full(n, np.nan)
    mu = float("nan")
    if usable.sum() >= 2:
        v = se[usable] ** 2
        w = 1.0 / (v + tau2)
        mu = float(np.sum(w * y[usable]) / np.sum(w))
        b = tau2 / (tau2 + v)
        shrunk[usable] = mu + b * (y[usable] - mu)
        sd[usable] = np.sqrt(b * v + (1.0 - b) ** 2 / np.sum(w))
        weight[usable] = b
    z_crit = float(stats.norm.ppf((1.0 + level) / 2.0))
    frame = pl.DataFrame(
        {
            "log_ratio": y,
            "std_error": se,
            "shrunk_log_ratio": shrunk,
            "posterior_sd": sd,
            "shrunk_ratio": np.exp(shrunk),
            "shrunk_ci_low": np.exp(shrunk - z_crit * sd),
            "shrunk_ci_high": np.exp(shrunk + z_crit * sd),
            "shrinkage_weight": weight,
            "mean_log_ratio": np.full(n, mu),
            "tau2": np.full(n, tau2),
        },
        schema={name: pl.Float64 for name in ("log_ratio", "std_error", *SHRINKAGE_COLUMNS[:-1])},
    )
    return frame.with_columns(
        pl.col(*SHRINKAGE_COLUMNS[:-3]).fill_nan(None),
        pl.col("mean_log_ratio", "tau2").fill_nan(None),
        pl.lit(method).alias("tau2_method"),
    )


def shrink_log_ratios_within(
    frame: pl.DataFrame,
    *,
    log_ratio: str,
    std_error: str,
    by: str | Sequence[str],
    level: float = 0.95,
    method: TauMethod = "REML",
) -> pl.DataFrame:
    """One row per input row: `shrink_log_ratios` applied separately within each `by` group.

    E.g. per origin across teams: ``shrink_log_ratios_within(table, log_ratio="log_ratio",
    std_error="std_error", by="origin")``. Returns the input columns plus the
    `SHRINKAGE_COLUMNS`, in the input row order; τ² and μ̂ are per group.
    """
    by = [by] if isinstance(by, str) else list(by)
    clash = [c for c in SHRINKAGE_COLUMNS if c in frame.columns]
    if clash:
        raise ValueError(f"frame already has column(s) {clash}")
    missing = [c for c in (log_ratio, std_error, *by) if c not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks column(s) {missing}")
    indexed = frame.with_row_index("_row")
    parts = []
    for _, part in indexed.group_by(by, maintain_order=True):
        shrunk = shrink_log_ratios(part[log_ratio], part[std_error], level=level, method=method)
        parts.append(pl.concat([part, shrunk.select(SHRINKAGE_COLUMNS)], how="horizontal"))
    if not parts:
        empty = shrink_log_ratios([], [], level=level, method=method).select(SHRINKAGE_COLUMNS)
        return pl.concat([frame, empty.clear()], how="horizontal")
    return pl.concat(parts).sort("_row").drop("_row")


def compute_log_rate_ratios(
    count: object,
    exposure: object,
    ref_count: object,
    ref_exposure: object,
    continuity: float = 0.0,
) -> pl.DataFrame:
    """One row per element: Wald log rate ratio and its standard error sqrt(1/a + 1/b).

    With ``continuity > 0`` (0.5 is customary) the correction is added to both counts of the
    rows where either count is zero, which makes their log ratio and standard error finite;
    other rows are unchanged. Without it such rows give ±inf / inf, which `shrink_log_ratios`
    excludes. Exposures must be positive (a missing denominator is an error).

    Returns columns ``log_ratio, std_error, is_continuity_corrected``.

    References
    ----------
    .. [1] Rothman, K. J., Greenland, S. and Lash, T. L. (2008). Modern Epidemiology, 3rd ed.,
       ch. 14 (Wald interval for a rate ratio).
    """
    a = _to_float_array(count)
    t1 = _to_float_array(exposure)
    b = _to_float_array(ref_count)
    t0 = _to_float_array(ref_exposure)
    a, t1, b, t0 = np.broadcast_arrays(a, t1, b, t0)
    if np.any(~np.isfinite(t1) | (t1 <= 0)) or np.any(~np.isfinite(t0) | (t0 <= 0)):
        raise ValueError("exposures must be positive and finite: a missing denominator is an error")
    if np.any(~np.isfinite(a) | (a < 0)) or np.any(~np.isfinite(b) | (b < 0)):
        raise ValueError("counts must be finite and non-negative")
    if continuity < 0:
        raise ValueError("continuity must not be negative")
    corrected = ((a == 0) | (b == 0)) & (continuity > 0)
    a = np.where(corrected, a + continuity, a)
    b = np.where(corrected, b + continuity, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.log(a / t1) - np.log(b / t0)
        std_error = np.sqrt(1.0 / a + 1.0 / b)
    return pl.DataFrame(
        {"log_ratio": log_ratio, "std_error": std_error, "is_continuity_corrected": corrected},
        schema={"log_ratio": pl.Float64, "std_error": pl.Float64, "is_continuity_corrected": pl.Boolean},
    )


def bh_q_values(p_values: object) -> pl.Series:
    """Benjamini–Hochberg q-values, one per input p-value, nulls kept as nulls.

    Computed with `scipy.stats.false_discovery_control(method="bh")` over the non-null
    (and non-NaN) p-values only; null or NaN inputs give null outputs. Apply it once to all
    tests of one run (all team × origin rows), as METHODS.md §4 requires.

    Raises
    ------
    ValueError
        When a p-value lies outside [0, 1].

    References
    ----------
    .. [1] Benjamini, Y. and Hochberg, Y. (1995). Controlling the false discovery rate: a
       practical and powerful approach to multiple testing. JRSS B 57(1), 289–300.
    """
    p = _to_float_array(p_values)
    present = np.isfinite(p)
    if np.any((p[present] < 0) | (p[present] > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    q = np.full(p.shape, np.nan)
    if present.any():
        q[present] = stats.false_discovery_control(p[present], method="bh")
    return pl.Series("q_value", q, dtype=pl.Float64).fill_nan(None)


def _poisson_limit(expected: np.ndarray, target: float, prob: float) -> np.ndarray:
    """Exact Poisson control limit on the ratio scale with Spiegelhalter's interpolation.

    y_p is the p-quantile of Poisson(target·E); the limit is (y_p − a)/E with
    a = (P(Y ≤ y_p) − p) / (P(Y ≤ y_p) − P(Y ≤ y_p − 1)), which makes the limits smooth in E.
    """
    mean = target * expected
    y_p = stats.poisson.ppf(prob, mean)
    cdf_at = stats.poisson.cdf(y_p, mean)
    cdf_below = stats.poisson.cdf(y_p - 1, mean)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = (cdf_at - prob) / (cdf_at - cdf_below)
    return (y_p - np.nan_to_num(a)) / expected


def funnel_limits(
    expected: object,
    *,
    levels: Sequence[float] = (0.95, 0.998),
    target: float = 1.0,
    overdispersion: float = 1.0,
    method: Literal["exact", "normal"] = "exact",
) -> pl.DataFrame:
    """One row per expected count × level: funnel-plot control limits for observed/expected.

    For a unit with expected count E (e.g. the SIR's expected or the reference-rate count),
    the ratio O/E under the target θ0 is Poisson(θ0·E)/E. Limits at level L are

    * ``method="exact"``: the (1 ∓ L)/2 Poisson quantiles with Spiegelhalter's interpolation,
      divided by E;
    * ``method="normal"``: θ0 ± z·sqrt(θ0/E);

    and with a multiplicative overdispersion factor φ ≥ 1 the distance from θ0 is stretched
    by √φ: limit = θ0 + √φ·(limit − θ0), clipped at 0 from below.

    Parameters
    ----------
    expected : expected counts (> 0).
    levels : coverage levels (0.95 and 0.998 are the usual 2 and 3 sigma funnels).
    target : θ0, the ratio the funnel is centred on (1 for an SIR).
    overdispersion : φ; 1 for pure Poisson variation, see `estimate_funnel_overdispersion`.
    method : "exact" (default) or "normal".

    Returns
    -------
    pl.DataFrame
        Columns ``expected, level, limit_low, limit_high``, sorted by level then expected.

    References
    ----------
    .. [1] Spiegelhalter, D. J. (2005). Funnel plots for comparing institutional performance.
       Statistics in Medicine 24(8), 1185–1202 (§3 exact limits, §5 overdispersion).
    """
    e = _to_float_array(expected)
    if e.size == 0 or np.any(~np.isfinite(e) | (e <= 0)):
        raise ValueError("expected counts must be positive and finite")
    if overdispersion < 1.0 or not np.isfinite(overdispersion):
        raise ValueError("overdispersion must be a finite factor >= 1")
    if target <= 0:
        raise ValueError("target must be positive")
    if method not in ("exact", "normal"):
        raise ValueError(f"method must be 'exact' or 'normal', got {method!r}")
    rows = []
    inflate = float(np.sqrt(overdispersion))
    for level in sorted(levels):
        if not 0.0 < level < 1.0:
            raise ValueError(f"levels must lie strictly between 0 and 1, got {level}")
        if method == "exact":
            low = _poisson_limit(e, target, (1.0 - level) / 2.0)
            high = _poisson_limit(e, target, (1.0 + level) / 2.0)
        else:
            half = stats.norm.ppf((1.0 + level) / 2.0) * np.sqrt(target / e)
            low, high = target - half, target + half
        low = np.maximum(0.0, target + inflate * (low - target))
        high = target + inflate * (high - target)
        rows.append(
            pl.DataFrame(
                {"expected": e, "level": np.full(e.size, level), "limit_low": low, "limit_high": high},
                schema={c: pl.Float64 for c in ("expected", "level", "limit_low", "limit_high")},
            )
        )
    return pl.concat(rows).sort("level", "expected")


def estimate_funnel_overdispersion(
    observed: object,
    expected: object,
    *,
    target: float = 1.0,
    winsor: float = 0.1,
) -> float:
    """Multiplicative overdispersion φ for funnel limits, from winsorised z-scores.

    z_i = (O_i/E_i − θ0) / sqrt(θ0/E_i); the z-scores are winsorised at the `winsor` and
    1 − `winsor` quantiles and φ̂ = mean(z²). Returns max(1, φ̂): the limits are never
    narrowed below Poisson variation.

    References
    ----------
    .. [1] Spiegelhalter, D. J. (2005). Statistics in Medicine 24(8), 1185–1202, §5.1.
    """
    o = _to_float_array(observed)
    e = _to_float_array(expected)
    if o.shape != e.shape:
        raise ValueError("observed and expected must have the same length")
    usable = np.isfinite(o) & np.isfinite(e) & (e > 0)
    if usable.sum() < 2:
        raise ValueError("at least two units with positive expected counts are needed")
    if not 0.0 <= winsor < 0.5:
        raise ValueError("winsor must lie in [0, 0.5)")
    z = (o[usable] / e[usable] - target) / np.sqrt(target / e[usable])
    low, high = np.quantile(z, [winsor, 1.0 - winsor])
    z = np.clip(z, low, high)
    return float(max(1.0, np.mean(z**2)))


def missing_origin_bounds(
    count: object,
    exposure: object,
    ref_count: object,
    ref_exposure: object,
    unlinked_count: object,
) -> pl.DataFrame:
    """One row per element: bounds on the rate ratio if all unlinked queries went to one side.

    With U queries whose person could not be linked to an origin (METHODS.md §8):

    * lower = (N_g / E_g) / ((N_ref + U) / E_ref): every unlinked query was of the reference;
    * upper = ((N_g + U) / E_g) / (N_ref / E_ref): every unlinked query was of group g.

    The true crude ratio lies between them whatever the origins of the unlinked persons.
    Inputs are array-likes (polars Series, numpy, lists) or scalars, broadcast together.

    Returns
    -------
    pl.DataFrame
        Columns ``ratio_lower_bound, ratio_upper_bound`` (Float64). upper is inf when
        N_ref = 0 and N_g + U > 0; a 0/0 bound is null.

    Raises
    ------
    ValueError
        On zero, negative or missing exposure, or negative counts.
    """
    arrays = np.broadcast_arrays(
        _to_float_array(count),
        _to_float_array(exposure),
        _to_float_array(ref_count),
        _to_float_array(ref_exposure),
        _to_float_array(unlinked_count),
    )
    n_g, e_g, n_ref, e_ref, unlinked = arrays
    if np.any(~np.isfinite(e_g) | (e_g <= 0)) or np.any(~np.isfinite(e_ref) | (e_ref <= 0)):
        raise ValueError("exposures must be positive and finite: a missing denominator is an error")
    for name, values in (("count", n_g), ("ref_count", n_ref), ("unlinked_count", unlinked)):
        if np.any(~np.isfinite(values) | (values < 0)):
            raise ValueError(f"{name} must be finite and non-negative")
    with np.errstate(divide="ignore", invalid="ignore"):
        lower = (n_g / e_g) / ((n_ref + unlinked) / e_ref)
        upper = ((n_g + unlinked) / e_g) / (n_ref / e_ref)
    return pl.DataFrame(
        {"ratio_lower_bound": lower, "ratio_upper_bound": upper},
        schema={"ratio_lower_bound": pl.Float64, "ratio_upper_bound": pl.Float64},
    ).with_columns(pl.all().fill_nan(None))
