"""Log-linear count models with an exposure offset (METHODS.md §3; Gelman, Fagan & Kiss 2007).

Pure and Dagster-free. log E[N_i] = log(exposure_i) + X_i·β with categorical factors in
treatment coding (origin, team, stratum), fitted with statsmodels:

* ``poisson``: GLM, Poisson family, log link;
* ``quasipoisson``: the same fit with the scale estimated by Pearson χ²/df (``scale="X2"``),
  so standard errors are the Poisson ones × √φ, as R's ``family = quasipoisson``;
* ``negbin``: NB2 (Var = μ + α·μ²) by maximum likelihood with
  ``statsmodels.discrete.discrete_model.NegativeBinomial(loglike_method="nb2")``, as R's
  ``MASS::glm.nb`` (θ = 1/α).

Coefficients are log rate ratios against each factor's reference level; `exponentiate_coefficients`
turns them into ratios with Wald intervals.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import polars as pl
from scipy import stats
from statsmodels.discrete.discrete_model import NegativeBinomial
from statsmodels.genmod import families as sm_families
from statsmodels.genmod.generalized_linear_model import GLM
from statsmodels.tools.sm_exceptions import ConvergenceWarning

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

Family = Literal["poisson", "quasipoisson", "negbin"]
FAMILIES: tuple[str, ...] = ("poisson", "quasipoisson", "negbin")
INTERCEPT = "(intercept)"
"""`term` of the intercept row in `CountModelResult.coefficients` (its `level` is null)."""

_COEFFICIENT_SCHEMA = {
    "term": pl.String,
    "level": pl.String,
    "estimate": pl.Float64,
    "std_error": pl.Float64,
    "p_value": pl.Float64,
    "is_estimable": pl.Boolean,
}

COVARIANCES = ("model", "person_clustered")
"""`covariance` of `fit_count_model`: the family's model-based standard errors, or the
cluster-robust sandwich with persons as clusters (METHODS.md §8b)."""


@dataclass(frozen=True)
class CountModelResult:
    """A fitted count model with an exposure offset.

    Attributes
    ----------
    family : "poisson", "quasipoisson" or "negbin".
    coefficients : one row per coefficient: term (factor name or ``(intercept)``), level
        (factor level as text, null for the intercept), estimate (log rate ratio against the
        factor's reference level), std_error, p_value (two-sided Wald z-test), is_estimable
        (false for a level whose cells hold no events at all, or whose factor's reference level
        holds none: its maximum-likelihood estimate is −∞ or undefined, so estimate, std_error
        and p_value are null).
    dispersion : Pearson χ² / df_resid under the fitted family (the overdispersion ratio; for
        negbin computed with Var = μ + α·μ²).
    deviance : residual deviance (for negbin: NB2 deviance at the fitted α, as R's glm.nb).
    null_deviance : deviance of the intercept + offset model (negbin: at the fitted α).
    df_resid : observations minus regression coefficients (α not counted, as in R).
    alpha : NB2 overdispersion α (negbin only, else None).
    n_obs : number of rows fitted.
    references : reference level per factor, as text.
    log_likelihood : maximised log-likelihood (Poisson likelihood for quasipoisson).
    """

    family: str
    coefficients: pl.DataFrame = field(compare=False)
    dispersion: float
    deviance: float
    null_deviance: float | None
    df_resid: float
    alpha: float | None
    n_obs: int
    references: Mapping[str, str] = field(compare=False)
    log_likelihood: float
    covariance: str = "model"


def _factor_levels(series: pl.Series) -> list[object]:
    """Distinct values in sorted order of the column's own dtype (numbers numerically)."""
    return series.unique().sort().to_list()


def _build_design(
    frame: pl.DataFrame, factors: Sequence[str], references: Mapping[str, object]
) -> tuple[np.ndarray, list[tuple[str, str | None]], dict[str, str]]:
    """Intercept + treatment-coded dummies; returns matrix, (term, level) labels, references."""
    columns = [np.ones(frame.height)]
    labels: list[tuple[str, str | None]] = [(INTERCEPT, None)]
    used_refs: dict[str, str] = {}
    for factor in factors:
        levels = _factor_levels(frame[factor])
        reference = references.get(factor, levels[0])
        if reference not in levels:
            raise ValueError(f"reference level {reference!r} is not a level of factor {factor!r}")
        used_refs[factor] = str(reference)
        values = frame[factor].to_numpy()
        for level in levels:
            if level == reference:
                continue
            columns.append((values == level).astype(float))
            labels.append((factor, str(level)))
    return np.column_stack(columns), labels, used_refs


def fit_count_model(frame: pl.DataFrame, *, family: Family, **arguments) -> CountModelResult:
    """One family of `fit_count_models` (see there for the arguments)."""
    return fit_count_models(frame, families=(family,), **arguments)[0]


def fit_count_models(
    frame: pl.DataFrame,
    *,
    count: str,
    exposure: str,
    factors: Sequence[str],
    families: Sequence[Family],
    references: Mapping[str, object] | None = None,
    clusters: pl.DataFrame | None = None,
) -> list[CountModelResult]:
    """Fit log E[count] = log(exposure) + factors (treatment coded) by Poisson, quasi-Poisson or
    NB2, once per family of `families`, in that order.

    Parameters
    ----------
    frame : one row per cell (e.g. team × origin × stratum), already aggregated.
    count : non-negative event counts.
    exposure : positive exposure (person-time; past arrests in the frisk example); enters as
        the offset log(exposure).
    factors : categorical columns entered as main effects, in this order.
    families : each of "poisson", "quasipoisson" or "negbin" (NB2) to fit. The design and the
        persons' cluster matrix are built once for all of them.
    references : reference level per factor; default the first level in sorted order (numeric
        columns sort numerically).
    clusters : the events of each cluster (person) per row of `frame`: columns ``row``
        (0-based position in `frame`), ``cluster`` and ``count``, summing to the row's count.
        When given, standard errors are cluster-robust with persons as clusters (see Notes).

    Returns
    -------
    list[CountModelResult], one per family.

    Raises
    ------
    ValueError
        On an unknown family, missing columns, nulls, negative counts, zero or negative
        exposure (a cell without exposure cannot carry a log offset: drop it explicitly), or an
        unknown reference level.
    RuntimeError
        When the NB2 likelihood maximisation does not converge.

    Notes
    -----
    Standard errors without `clusters`: Poisson from the information matrix; quasi-Poisson the
    Poisson ones × √φ with φ = Pearson χ²/df_resid; NB2 from the Hessian of the NB2
    likelihood. With `clusters` (persons queried again and again, METHODS.md §8b) they are the
    sandwich B⁻¹ M B⁻¹ of the family's estimating equations Σ_c x_c d_c (y_c − μ_c) = 0
    (d = 1 for the Poisson families, 1/(1 + αμ) for NB2; B = Σ x_c d_c μ_c x_cᵀ), with the
    covariance of the counts Ω = φ·C: C_cc' = Σ_k n_kc n_kc' over persons k (each person's
    events are one cluster, also across cells: the same person queried by two teams), and
    φ = max(1, Σ_c (y_c − μ_c)²/C_cc / df) the variation between cells beyond the persons' own
    that the main-effects model does not explain (quasi-likelihood's dispersion, measured
    against the clustered variance instead of μ). M = Xᵀ D Ω D X.

    Levels without events: with main effects only, the estimate of a level whose cells all
    have zero counts runs off to −∞ (the likelihood keeps rising), and statsmodels stops at
    some large negative number with a huge standard error. Such levels (and every level of a
    factor whose reference level has no events) are reported as not estimable, with null
    estimates, and their cells are left out of the fit, which changes no other estimate: at
    the −∞ limit they contribute nothing to the likelihood. p-values are
    two-sided Wald z-tests for all families (R's summary.glm uses t with df_resid for
    quasipoisson; with df_resid in the hundreds the difference is in the fourth decimal).
    NB2 is fitted with statsmodels' defaults (Newton's method, start values from a Poisson
    fit), which reproduce R's MASS::glm.nb on the frisk data to 1e-4.

    References
    ----------
    .. [1] Gelman, A., Fagan, J. and Kiss, A. (2007). An analysis of the New York City police
       department's "stop-and-frisk" policy in the context of claims of racial bias. JASA
       102(479), 813–823.
    .. [2] Gelman, A. and Hill, J. (2007). Data Analysis Using Regression and
       Multilevel/Hierarchical Models, ch. 6 (overdispersed Poisson, quasi-Poisson).
    .. [3] McCullagh, P. and Nelder, J. A. (1989). Generalized Linear Models, 2nd ed., §6.2.
    .. [4] Hilbe, J. M. (2011). Negative Binomial Regression, 2nd ed. (NB2).
    """
    for family in families:
        if family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    if clusters is not None:
        missing = [c for c in ("row", "cluster", "count") if c not in clusters.columns]
        if missing:
            raise ValueError(f"clusters lacks column(s) {missing}")
    factors = [factors] if isinstance(factors, str) else list(factors)
    references = dict(references or {})
    unknown = set(references) - set(factors)
    if unknown:
        raise ValueError(f"references given for columns that are not factors: {sorted(unknown)}")
    needed = [count, exposure, *factors]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks column(s) {missing}")
    nulls = {c: frame[c].null_count() for c in needed if frame[c].null_count()}
    if nulls:
        raise ValueError(f"null values in {nulls}: drop or impute explicitly before fitting")
    y = frame[count].cast(pl.Float64).to_numpy()
    exposure_values = frame[exposure].cast(pl.Float64).to_numpy()
    if np.any(y < 0) or np.any(y != np.floor(y)):
        raise ValueError(f"{count!r} must hold non-negative whole numbers")
    bad_exposure = int(np.sum(~np.isfinite(exposure_values) | (exposure_values <= 0)))
    if bad_exposure:
        raise ValueError(
            f"{bad_exposure} rows have zero, negative or non-finite {exposure!r}: "
            "a log-offset model needs positive exposure in every row"
        )
    if not np.any(y > 0):
        raise ValueError(f"{count!r} is zero in every row: there is nothing to fit")
    _, all_labels, used_refs = _build_design(frame, factors, references)
    keep, inestimable = _rows_with_events(frame, count, factors, used_refs)
    fitted_frame = frame.filter(pl.Series(keep))
    # NOTE: a factor whose reference level has no events is fitted against its first
    # remaining level; its coefficients are reported as not estimable anyway.
    fit_refs = {f: r for f, r in references.items() if (f, None) not in inestimable}
    fit_refs |= {f: _factor_levels(fitted_frame[f])[0] for f in factors if (f, None) in inestimable}
    design, labels, _ = _build_design(fitted_frame, factors, fit_refs)
    y, offset = y[keep], np.log(exposure_values[keep])
    n_obs, n_coef = design.shape
    if n_obs <= n_coef:
        raise ValueError(f"{n_obs} rows cannot identify {n_coef} coefficients")

    # NOTE: the persons' matrix once for every family: at 50M queries it is most of the
    # cluster-robust errors' time, and the same for each family.
    per_cluster = None if clusters is None else _cluster_matrix(clusters, keep)
    return [_fit_family(family, design, y, offset, labels=labels, all_labels=all_labels,
                        inestimable=inestimable, references=used_refs, per_cluster=per_cluster)
            for family in families]


def _fit_family(family: Family, design: np.ndarray, y: np.ndarray, offset: np.ndarray, *,
                labels: list[tuple[str, str | None]], all_labels: list[tuple[str, str | None]],
                inestimable: set[tuple[str, str | None]], references: dict[str, str],
                per_cluster: _ClusterMatrix | None) -> CountModelResult:
    """One family's fit of `fit_count_models` on its design (the rows with events)."""
    n_obs, n_coef = design.shape
    alpha: float | None = None
    if family in ("poisson", "quasipoisson"):
        model = GLM(y, design, family=sm_families.Poisson(), offset=offset)
        fitted = model.fit(scale="X2" if family == "quasipoisson" else None)
        params, bse, pvalues = fitted.params, fitted.bse, fitted.pvalues
        deviance = float(fitted.deviance)
        null_deviance: float | None = float(fitted.null_deviance)
        mu = fitted.mu
        variance = mu
        log_likelihood = float(fitted.llf)
    else:
        model = NegativeBinomial(y, design, loglike_method="nb2", offset=offset)
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            try:
                fitted = model.fit(disp=0, maxiter=200)
            except ConvergenceWarning as exc:
                raise RuntimeError(f"NB2 maximum likelihood did not converge: {exc}") from None
        if not fitted.mle_retvals.get("converged", False):
            raise RuntimeError("NB2 maximum likelihood did not converge")
        params, bse, pvalues = fitted.params[:-1], fitted.bse[:-1], fitted.pvalues[:-1]
        alpha = float(fitted.params[-1])
        mu = np.exp(design @ params + offset)
        variance = mu + alpha * mu**2
        nb_family = sm_families.NegativeBinomial(alpha=alpha)
        deviance = float(nb_family.deviance(y, mu))
        # NOTE: as R's glm.nb: the null model (intercept + offset) at the final α.
        null_fit = GLM(y, np.ones((n_obs, 1)), family=nb_family, offset=offset).fit()
        null_deviance = float(null_fit.deviance)
        log_likelihood = float(fitted.llf)

    df_resid = float(n_obs - n_coef)
    dispersion = float(np.sum((y - mu) ** 2 / variance) / df_resid)
    covariance = "model"
    if per_cluster is not None:
        working = np.ones(n_obs) if alpha is None else 1.0 / (1.0 + alpha * mu)
        bse = _cluster_robust_errors(design, y, mu, working, per_cluster)
        pvalues = 2.0 * stats.norm.sf(np.abs(np.asarray(params) / bse))
        covariance = "person_clustered"
    fitted = dict(zip(labels, zip(params, bse, pvalues, strict=True), strict=True))
    rows = []
    for label in all_labels:
        term = label[0]
        if label in fitted and (term, None) not in inestimable and label not in inestimable:
            rows.append((*label, *map(float, fitted[label]), True))
        else:
            rows.append((*label, None, None, None, False))
    coefficients = pl.DataFrame(rows, schema=_COEFFICIENT_SCHEMA, orient="row")
    return CountModelResult(
        family=family,
        coefficients=coefficients,
        dispersion=dispersion,
        deviance=deviance,
        null_deviance=null_deviance,
        df_resid=df_resid,
        alpha=alpha,
        n_obs=n_obs,
        references=references,
        log_likelihood=log_likelihood,
        covariance=covariance,
    )


def _rows_with_events(
    frame: pl.DataFrame, count: str, factors: Sequence[str], references: Mapping[str, str]
) -> tuple[np.ndarray, set[tuple[str, str | None]]]:
    """Rows to fit, and the labels not estimable: levels whose rows hold no events (and
    ``(factor, None)`` for a factor whose reference level holds none). Repeats until stable:
    leaving rows out never empties another level's events, but it can leave a level with no row."""
    keep = np.ones(frame.height, dtype=bool)
    inestimable: set[tuple[str, str | None]] = set()
    y = frame[count].cast(pl.Float64).to_numpy()
    for factor in factors:
        values = frame[factor].cast(pl.String).to_numpy()
        for level in np.unique(values):
            rows = values == level
            if y[rows].sum() == 0:
                keep &= ~rows
                if level == references[factor]:
                    inestimable.add((factor, None))
                else:
                    inestimable.add((factor, str(level)))
    return keep, inestimable


@dataclass(frozen=True)
class _ClusterMatrix:
    """The events of each cluster per fitted row: ``counts`` (sparse, clusters × rows) and
    ``within`` (C_cc, the sum over clusters of their squared counts per row)."""

    counts: csr_matrix
    within: np.ndarray


def _cluster_matrix(clusters: pl.DataFrame, keep: np.ndarray) -> _ClusterMatrix:
    """`clusters` (see `fit_count_models`) as a matrix over the rows kept for the fit (`keep`)."""
    from scipy import sparse

    position = np.full(keep.size, -1)
    position[keep] = np.arange(int(keep.sum()))
    rows = position[clusters["row"].to_numpy()]
    kept = rows >= 0
    # NOTE: the clusters numbered in sorted order, as np.unique's inverse numbers them (so every
    # sum runs in the same order), by polars' dense rank: 20M person keys 8.7–11.0 → 2.1 s.
    cluster_index = (clusters["cluster"].filter(pl.Series(kept)).rank("dense").cast(pl.Int64)
                     - 1).to_numpy()
    counts = clusters["count"].cast(pl.Float64).to_numpy()[kept]
    per_cluster = sparse.csr_matrix(
        (counts, (cluster_index, rows[kept])),
        shape=(int(cluster_index.max(initial=-1)) + 1, int(keep.sum())))
    within = np.asarray(per_cluster.multiply(per_cluster).sum(axis=0)).ravel()
    return _ClusterMatrix(per_cluster, within)


def _cluster_robust_errors(
    design: np.ndarray,
    y: np.ndarray,
    mu: np.ndarray,
    working: np.ndarray,
    per_cluster: _ClusterMatrix,
) -> np.ndarray:
    """Standard errors of the sandwich B⁻¹ Xᵀ D Ω D X B⁻¹ (see `fit_count_models`, Notes)."""
    weighted = design * working[:, None]
    scores = per_cluster.counts @ weighted  # clusters × coefficients
    within = per_cluster.within  # C_cc
    # NOTE: variation between cells beyond the persons' own (what the main effects miss) scales
    # the whole covariance, as quasi-likelihood does: φ = Σ (y − μ)²/C_cc / df, at least 1.
    used = within > 0
    df = max(int(used.sum()) - design.shape[1], 1)
    dispersion = max(1.0, float(np.sum((y[used] - mu[used]) ** 2 / within[used]) / df))
    meat = dispersion * (scores.T @ scores)
    bread = np.linalg.inv(design.T @ (design * (working * mu)[:, None]))
    return np.sqrt(np.diag(bread @ meat @ bread))


def exponentiate_coefficients(result: CountModelResult, level: float = 0.95) -> pl.DataFrame:
    """One row per non-intercept coefficient: the rate ratio exp(β) with a Wald interval.

    ratio = exp(estimate), ci_low/ci_high = exp(estimate ∓ z·std_error) with z the normal
    (1 + level)/2 quantile. Columns ``term, level, ratio, ci_low, ci_high, p_value,
    is_estimable`` in the order of `result.coefficients` (null estimates where not estimable).
    The intercept (a baseline rate, not a ratio) is left out.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
    z_crit = float(stats.norm.ppf((1.0 + level) / 2.0))
    return result.coefficients.filter(pl.col("term") != INTERCEPT).select(
        "term",
        "level",
        pl.col("estimate").exp().alias("ratio"),
        (pl.col("estimate") - z_crit * pl.col("std_error")).exp().alias("ci_low"),
        (pl.col("estimate") + z_crit * pl.col("std_error")).exp().alias("ci_high"),
        "p_value",
        "is_estimable",
    )
