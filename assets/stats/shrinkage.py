"""Many teams, small cells: shrinkage, multiple testing, funnel limits, missing-origin bounds.

Pure and Dagster-free (METHODS.md §4 and §8).

* `shrink_ratios_within`: empirical-Bayes shrinkage of team rate ratios toward the all-team
  mean under a Poisson–lognormal model (conditional binomial likelihood per team, normal
  random effect on the log ratio, τ by restricted likelihood), zero cells included;
* `bh_q_values`: Benjamini–Hochberg q-values, null-safe;
* `funnel_limits`, `estimate_funnel_overdispersion`: control limits for a ratio against its
  expected count (Spiegelhalter 2005) with a multiplicative overdispersion factor;
* `missing_origin_bounds`: worst-case bounds on a rate ratio when some queries cannot be
  linked to an origin.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import numpy as np
import polars as pl
from scipy import fft as sp_fft
from scipy import stats

from assets.stats.processors import available_processors


def _to_float_array(values: object) -> np.ndarray:
    """Array of floats with nulls as NaN (accepts polars Series, numpy arrays, lists, scalars)."""
    if isinstance(values, pl.Series):
        return values.cast(pl.Float64).fill_null(np.nan).to_numpy().astype(float)
    if isinstance(values, (list, tuple)):
        return np.array([np.nan if v is None else v for v in values], dtype=float)
    return np.atleast_1d(np.asarray(values, dtype=float))


ETA_GRID = np.linspace(-6.0, 6.0, 481)
"""Grid of log ratios (ratios e^-6 … e^6, step 0.025) on which the units' likelihoods are
computed and τ is chosen."""

POSTERIOR_GRID = np.linspace(-6.0, 6.0, 2 * ETA_GRID.size - 1)
"""`ETA_GRID` with the midpoints (step 0.0125): the grid of the posteriors at τ̂.

NOTE: the grid's cells widen each posterior by their own variance (step²/12), and on panels like
the sample's a team's posterior is only a few steps of 0.025 wide: on that grid the 95%
intervals covered the truth in 98% of cells without repeat checks, on this one 96%
(tests/integration/test_interval_coverage.py, docs/methodology.md)."""

SHRINKAGE_COLUMNS = (
    "shrunk_ratio",
    "shrunk_ci_low",
    "shrunk_ci_high",
    "mean_ratio",
    "tau",
    "unit_count",
)
"""Columns that `shrink_ratios_within` adds to the unit keys, in order."""


def _conditional_log_likelihoods(
    count: np.ndarray, ref_count: np.ndarray, offset: np.ndarray, units: Sequence[slice],
    design_effects: Sequence[float],
) -> np.ndarray:
    """log L(η) on `ETA_GRID`, one row per unit (a slice of the strata): Σ_s a_s log π_s +
    b_s log(1 − π_s) with logit π_s = η + offset_s, divided by the unit's design effect
    (effective counts)."""
    x = ETA_GRID[:, None] + offset[None, :]
    # NOTE: the terms of every stratum at once, summed per unit: the same sums, in the same
    # order, as one unit at a time, without thousands of small array operations.
    # NOTE: log(1 + e^∓x) = max(±x, 0) + log(1 + e^−|x|): one exponential and one logarithm
    # for both terms, and numpy's vectorised exp and log1p, five times faster than its logaddexp
    # (which computes the same thing one element at a time; equal to within a unit in the last
    # place).
    softplus = np.log1p(np.exp(-np.abs(x)))
    terms = -(count[None, :] * (softplus + np.maximum(-x, 0.0))
              + ref_count[None, :] * (softplus + np.maximum(x, 0.0)))
    return np.array([terms[:, unit].sum(axis=1) / d
                     for unit, d in zip(units, design_effects, strict=True)])


class _GaussianFilter:
    """Rows of a matrix on a grid of step `step` convolved with N(0, τ²) densities, for many τ.

    Each τ is one product of the rows' transform with the Gaussian's transfer function
    exp(−2π²τ²f²) and one inverse FFT, on rows zero-padded by 10 τ so that the convolution is
    linear, not circular. The kernel sums to 1; τ = 0 leaves the rows unchanged.
    """

    SHARED_LENGTH = 1.6
    """τ whose padded lengths lie within this factor of each other share one transform length
    (the longest of them): one transform pair for several τ."""

    def __init__(self, values: np.ndarray, step: float) -> None:
        self.values = values
        self.step = step
        self.points = values.shape[1]

    def __call__(self, tau: float) -> np.ndarray:
        return self.many(np.array([tau]))[0]

    def length(self, tau: float) -> int:
        """The transform length for τ: the rows padded by 10 τ, rounded up to a fast length."""
        return sp_fft.next_fast_len(self.points + int(np.ceil(10 * tau / self.step)) + 1)

    def many(self, taus: np.ndarray) -> np.ndarray:
        """The rows convolved with N(0, τ²) for each τ: shape (τ, row, grid)."""
        smoothed = np.empty((len(taus), *self.values.shape))
        smoothed[taus == 0.0] = self.values
        wide = np.flatnonzero(taus > 0.0)
        wide = wide[np.argsort(taus[wide], kind="stable")]
        lengths = [self.length(taus[i]) for i in wide]
        # NOTE: each τ on a transform only as long as it needs (until 5 December 2026 every τ
        # of a group took the length of its largest, up to 13 times longer: a team with few
        # queries has a flat likelihood, which widens the τ grid). The padding keeps the
        # wrapped kernel below e^−50 of its peak, so only rounding depends on the length.
        first = 0
        while first < len(wide):
            last = first
            while (last + 1 < len(wide)
                   and lengths[last + 1] <= self.SHARED_LENGTH * lengths[first]):
                last += 1
            size, chosen = lengths[last], wide[first:last + 1]
            frequencies = sp_fft.rfftfreq(size, d=self.step)
            transfer = np.exp(-2.0 * (np.pi * taus[chosen, None] * frequencies[None, :]) ** 2)
            spectrum = sp_fft.rfft(self.values, n=size, axis=1)
            # NOTE: one thread: `shrink_ratios_within` fits its groups in threads already, and
            # threads inside the transform as well made a theme's shrinkage slower.
            smoothed[chosen] = sp_fft.irfft(spectrum[None, :, :] * transfer[:, None, :], n=size,
                                            axis=2, workers=1)[:, :, : self.points]
            first = last + 1
        return smoothed


def _with_midpoints(rows: np.ndarray) -> np.ndarray:
    """Rows on `ETA_GRID` extended to `POSTERIOR_GRID`: the values at the midpoints by cubic
    interpolation (quadratic next to the ends)."""
    out = np.empty((len(rows), POSTERIOR_GRID.size))
    out[:, ::2] = rows
    out[:, 3:-3:2] = (9 * (rows[:, 1:-2] + rows[:, 2:-1]) - rows[:, :-3] - rows[:, 3:]) / 16
    out[:, 1] = (3 * rows[:, 0] + 6 * rows[:, 1] - rows[:, 2]) / 8
    out[:, -2] = (3 * rows[:, -1] + 6 * rows[:, -2] - rows[:, -3]) / 8
    return out


def shrink_unit_likelihoods(
    log_likelihoods: np.ndarray, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """Empirical-Bayes posterior of each unit's log ratio under η_t ~ N(μ, τ²).

    `log_likelihoods` holds one row per unit: log L_t(η) on `ETA_GRID`. The marginal likelihood
    of unit t is M_t(μ, τ) = ∫ L_t(η) φ((η − μ)/τ)/τ dη, a convolution computed by FFT for all
    μ on the grid at once (`_GaussianFilter`). τ is the mode of the restricted likelihood Σ_μ Π_t M_t(μ, τ) (μ
    integrated out under a flat prior between the units' estimates, the analogue of REML);
    given τ̂, μ is integrated out again, so the posterior of η_t carries the uncertainty of μ̂.
    τ is chosen on `ETA_GRID`, the posteriors at τ̂ are computed on `POSTERIOR_GRID`.
    Returns the posterior median, the equal-tailed `level` limits (log scale), μ̂ (posterior
    mean) and τ̂.
    """
    step = ETA_GRID[1] - ETA_GRID[0]
    relative = log_likelihoods - log_likelihoods.max(axis=1, keepdims=True)
    likelihood = np.exp(relative)
    flat = likelihood / likelihood.sum(axis=1, keepdims=True)
    mean = flat @ ETA_GRID
    sd = np.sqrt(np.maximum(flat @ ETA_GRID**2 - mean**2, 0.0))
    # NOTE: the flat prior of μ spans the units' flat-prior posteriors ± 3 sd.
    low, high = np.min(mean - 3 * sd), np.max(mean + 3 * sd)

    def spanned(grid: np.ndarray) -> np.ndarray:
        centres = (grid >= low) & (grid <= high)
        if not centres.any():
            centres[np.argmin(np.abs(grid - np.median(mean)))] = True
        return centres

    centres = spanned(ETA_GRID)
    spread = float(np.ptp(mean) + 3 * np.max(sd))
    taus = np.concatenate([[0.0], np.geomspace(0.01, max(1.0, spread), 24)])
    # NOTE: every τ at once (one array per step, τ first), without 25 rounds of small array
    # operations.
    marginals = np.maximum(_GaussianFilter(likelihood, step).many(taus)[:, :, centres], 1e-300)
    log_joints = np.log(marginals).sum(axis=1)
    tops = log_joints.max(axis=1)
    restricted = tops + np.log(np.exp(log_joints - tops[:, None]).sum(axis=1))
    # NOTE: the first τ of the highest restricted likelihood (a NaN never wins).
    tau = float(taus[int(np.argmax(np.where(np.isnan(restricted), -np.inf, restricted)))])
    # NOTE: given τ̂, μ and the posteriors on the grid with the midpoints, whose cells set the
    # intervals' width (`POSTERIOR_GRID`). The log-likelihoods at the midpoints are
    # interpolated (cubic; exact where they are quadratic, as a precise unit's is).
    step /= 2
    likelihood = np.exp(_with_midpoints(relative))
    centres = spanned(POSTERIOR_GRID)
    marginal = np.maximum(_GaussianFilter(likelihood, step)(tau)[:, centres], 1e-300)
    log_joint = np.log(marginal).sum(axis=0)
    weight = np.exp(log_joint - log_joint.max())
    weight /= weight.sum()
    spread_weight = np.zeros_like(likelihood)
    spread_weight[:, centres] = weight[None, :] / marginal
    posterior = likelihood * _GaussianFilter(spread_weight, step)(tau)
    posterior = np.maximum(posterior, 0.0)
    posterior /= posterior.sum(axis=1, keepdims=True)
    # NOTE: each grid point carries the posterior mass of its cell [η − h/2, η + h/2], so the
    # cumulative mass up to a point is reached at its cell's upper edge, and the distribution
    # function is linear between edges. Read at the points themselves (as before 5 December
    # 2026), every quantile came out half a step low: the shrunk ratios and their bounds 1.2%
    # too low (docs/methodology.md).
    edges = np.concatenate([[POSTERIOR_GRID[0] - step / 2], POSTERIOR_GRID + step / 2])
    cdf = np.concatenate([np.zeros((len(posterior), 1)), np.cumsum(posterior, axis=1)], axis=1)
    alpha = (1.0 - level) / 2.0

    def quantile(p: float) -> np.ndarray:
        return np.array([np.interp(p, row, edges) for row in cdf])

    return (quantile(0.5), quantile(alpha), quantile(1.0 - alpha),
            float(weight @ POSTERIOR_GRID[centres]), tau)


def shrink_ratios_within(
    frame: pl.DataFrame,
    *,
    unit: str | Sequence[str],
    by: str | Sequence[str] = (),
    count: str = "count",
    exposure: str = "exposure",
    ref_count: str = "ref_count",
    ref_exposure: str = "ref_exposure",
    design_effect: str | None = None,
    level: float = 0.95,
) -> pl.DataFrame:
    """One row per `by` × unit: the unit's ratio shrunk toward the mean of its `by` group.

    A Poisson–lognormal random-effects model that keeps every unit, zero counts included.
    Within one `by` group (e.g. one origin under one benchmark), unit t (a team) has the true
    log rate ratio η_t against the reference, η_t ~ N(μ, τ²). Conditional on the stratum totals,
    the group's count in stratum s is binomial: a_ts ~ Bin(a_ts + b_ts, π_ts) with
    logit π_ts = η_t + log(T1_ts / T0_ts) — the likelihood behind the Mantel–Haenszel ratio,
    exact at any count (no Wald approximation, no continuity correction). Repeat events of one
    person enter through effective counts: the log-likelihood is divided by the unit's design
    effect (column `design_effect`; a null is replaced by the group's median, else 1). τ is the
    restricted-likelihood estimate (μ integrated out with a flat prior, computed on a grid);
    the posterior of η_t integrates μ out too. The shrunk ratio is the exponentiated posterior
    median, the interval its equal-tailed posterior quantiles.

    Parameters
    ----------
    frame : one row per `by` × unit × stratum with the group's and the reference's counts and
        exposures (strata where either exposure is zero are left out).
    unit : the column(s) of the shrunk units (e.g. ``team_code``).
    by : separate models per group (e.g. ``("query_type", "benchmark", "origin")``).
    design_effect : optional column with each unit's design effect (≥ 1).
    level : credibility level of the interval.

    Returns
    -------
    pl.DataFrame
        ``*by, *unit, shrunk_ratio, shrunk_ci_low, shrunk_ci_high, mean_ratio`` (exp μ̂),
        ``tau`` (τ̂ on the log scale), ``unit_count`` (units in the model). A unit without
        events in either group carries no information and gets null estimates; a group with
        fewer than two informative units is not shrunk (null estimates). Sorted by `by` and unit.

    Notes
    -----
    Why not normal-normal shrinkage of Wald log ratios: a unit with a zero count has no finite
    Wald log ratio and must be dropped, and in small cells the Wald standard error grows as the
    count falls, so low counts get low weight and the pooled mean is pulled up (with a true
    ratio of 1 and 0.5–4 expected events per unit, exp μ̂ ≈ 1.25). The conditional likelihood
    has neither problem.

    References
    ----------
    .. [1] Breslow, N. E. and Day, N. E. (1987). Statistical Methods in Cancer Research II,
       §2.3 (conditional binomial likelihood of a rate ratio).
    .. [2] Morris, C. N. (1983). Parametric empirical Bayes inference: theory and
       applications. JASA 78(381), 47–55.
    .. [3] Gelman, A., Fagan, J. and Kiss, A. (2007). JASA 102(479), 813–823 (multilevel
       Poisson models of stop rates with a lognormal random effect).
    .. [4] Stijnen, T., Hamza, T. H. and Özdemir, P. (2010). Random effects meta-analysis of
       event outcome in the framework of the generalized linear mixed model. Statistics in
       Medicine 29, 3046–3067 (the conditional binomial-normal model).
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
    unit = [unit] if isinstance(unit, str) else list(unit)
    by = [by] if isinstance(by, str) else list(by)
    needed = [*by, *unit, count, exposure, ref_count, ref_exposure]
    needed += [design_effect] if design_effect else []
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks column(s) {missing}")
    for name in (count, ref_count, exposure, ref_exposure):
        values = frame[name].cast(pl.Float64)
        if values.null_count() or (~values.is_finite()).any() or (values < 0).any():
            raise ValueError(f"{name!r} must be finite and non-negative in every row")
    # NOTE: sorted on every column used, so that a unit's strata are summed in one order
    # whatever order the rows came in (byte-identical outputs).
    usable = frame.filter((pl.col(exposure) > 0) & (pl.col(ref_exposure) > 0)).sort(
        [*by, *unit, count, exposure, ref_count, ref_exposure])
    out_schema = {**{c: frame.schema[c] for c in (*by, *unit)},
                  **{c: pl.Float64 for c in SHRINKAGE_COLUMNS[:-1]}, "unit_count": pl.Int64}
    # NOTE: one pass to numpy arrays; the groups and units are runs of the sorted rows.
    deff_column = (pl.col(design_effect).cast(pl.Float64) if design_effect
                   else pl.lit(None, pl.Float64))
    arrays = usable.select(
        pl.struct(by).rank("dense").alias("_group") if by else pl.lit(1).alias("_group"),
        pl.struct([*by, *unit]).rank("dense").alias("_unit"),
        *(pl.col(c).cast(pl.Float64) for c in (count, ref_count, exposure, ref_exposure)),
        deff_column.alias("_deff"),
    )
    group_ids, unit_ids = arrays["_group"].to_numpy(), arrays["_unit"].to_numpy()
    a, b, t1, t0, deff_rows = (arrays[c].to_numpy() for c in arrays.columns[2:])
    labels = usable.select(*by, *unit).rows()

    def fit_group(group: int) -> tuple[list[slice], np.ndarray, np.ndarray, float, float]:
        in_group = np.flatnonzero(group_ids == group)
        starts = in_group[np.flatnonzero(np.diff(unit_ids[in_group], prepend=-1))]
        ends = np.append(starts[1:], in_group[-1] + 1)
        slices = [slice(start, end) for start, end in zip(starts, ends, strict=True)]
        deffs = np.array([np.nan if np.isnan(deff_rows[s]).any() else max(1.0, deff_rows[s].max())
                          for s in slices])
        fill = float(np.nanmedian(deffs)) if np.isfinite(deffs).any() else 1.0
        deffs = np.where(np.isfinite(deffs), deffs, max(1.0, fill))
        # NOTE: a unit without events in either group has a flat likelihood: it tells nothing
        # about its own ratio nor about μ and τ, so it is left out and gets no estimate.
        informative = np.array([a[s].sum() + b[s].sum() > 0 for s in slices])
        estimate = np.full((3, len(slices)), np.nan)
        mu = tau = np.nan
        if informative.sum() >= 2:
            first = in_group[0]
            rows_of_group = slice(first, in_group[-1] + 1)
            loglik = _conditional_log_likelihoods(
                a[rows_of_group], b[rows_of_group],
                np.log(t1[rows_of_group] / t0[rows_of_group]),
                [slice(s.start - first, s.stop - first)
                 for s, keep in zip(slices, informative, strict=True) if keep],
                deffs[informative])
            median, low, high, mu, tau = shrink_unit_likelihoods(loglik, level=level)
            estimate[:, informative] = np.vstack([median, low, high])
        return slices, informative, estimate, mu, tau

    # NOTE: the groups are independent models: threads fit them side by side (numpy and the
    # FFT release the GIL), and each group's numbers do not depend on where it was fitted.
    with ThreadPoolExecutor(available_processors()) as pool:
        fits = list(pool.map(fit_group, np.unique(group_ids)))
    rows = []
    for slices, informative, estimate, mu, tau in fits:
        for i, s in enumerate(slices):
            rows.append((*labels[s.start], *np.exp(estimate[:, i]).tolist(), float(np.exp(mu)),
                         float(tau), int(informative.sum())))
    result = pl.DataFrame(rows, schema=out_schema, orient="row")
    return result.with_columns(pl.col(SHRINKAGE_COLUMNS[:-1]).fill_nan(None)).sort([*by, *unit])


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
    # NOTE: at y_p = 0 the interpolation would step below zero (a count cannot): the limit is 0.
    return np.maximum(0.0, y_p - np.nan_to_num(a)) / expected


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
    by √φ: limit = θ0 + √φ·(limit − θ0), clipped at 0 from below (a ratio of counts is never
    negative; at tiny expected counts even the upper quantile of the count is 0).

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
        high = np.maximum(0.0, target + inflate * (high - target))
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
