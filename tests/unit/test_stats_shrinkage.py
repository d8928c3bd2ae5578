"""Shrinkage (sparse cells, agreement with normal-normal REML), BH q-values, funnel limits and
missing-origin bounds."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, stats

from assets.stats.shrinkage import (
    ETA_GRID,
    POSTERIOR_GRID,
    SHRINKAGE_COLUMNS,
    _conditional_log_likelihoods,
    _GaussianFilter,
    _with_midpoints,
    bh_q_values,
    estimate_funnel_overdispersion,
    funnel_limits,
    missing_origin_bounds,
    shrink_ratios_within,
    shrink_unit_likelihoods,
)

def _units(rng: np.random.Generator, true_log: np.ndarray, expected: np.ndarray,
           ref_expected: float = 400.0) -> pl.DataFrame:
    """One stratum per unit: the group's count with `expected` events at ratio 1, the
    reference's with `ref_expected`; exposures 1000 and 10,000 (offset log 0.1)."""
    ref_rate = ref_expected / 10_000
    return pl.DataFrame({
        "team": [f"T{i:02d}" for i in range(true_log.size)],
        "count": rng.poisson(expected * np.exp(true_log)),
        "exposure": expected / ref_rate,
        "ref_count": rng.poisson(np.full(true_log.size, ref_expected)),
        "ref_exposure": 10_000.0,
    })


def _wald_normal_normal_mean(frame: pl.DataFrame) -> float:
    """The replaced method: DerSimonian–Laird mean of Wald log ratios, zero counts dropped."""
    usable = frame.filter((pl.col("count") > 0) & (pl.col("ref_count") > 0))
    y = (np.log(usable["count"] / usable["exposure"])
         - np.log(usable["ref_count"] / usable["ref_exposure"])).to_numpy()
    v = 1 / usable["count"].to_numpy() + 1 / usable["ref_count"].to_numpy()
    w = 1 / v
    q = np.sum(w * (y - np.sum(w * y) / np.sum(w)) ** 2)
    tau2 = max(0.0, (q - (y.size - 1)) / (np.sum(w) - np.sum(w**2) / np.sum(w)))
    w = 1 / (v + tau2)
    return float(np.sum(w * y) / np.sum(w))


def test_sparse_cells_do_not_pull_the_pooled_ratio_up():
    # Review finding: with a true ratio of 1 in 40 teams and 0.5-4 expected queries per cell,
    # normal-normal shrinkage of Wald log ratios (zero-count teams dropped) gave exp(mu) ~ 1.25.
    rng = np.random.default_rng(2)
    means, wald_means, kept = [], [], []
    for _ in range(60):
        frame = _units(rng, np.zeros(40), rng.uniform(0.5, 4.0, 40))
        shrunk = shrink_ratios_within(frame, unit="team")
        means.append(math.log(shrunk["mean_ratio"][0]))
        kept.append(shrunk["shrunk_ratio"].is_not_null().mean())
        wald_means.append(_wald_normal_normal_mean(frame))
    assert math.exp(np.mean(wald_means)) > 1.15  # the defect, reproduced
    # NOTE: mu is the mean log ratio; a spurious tau > 0 in about half the replicates puts it
    # a few per cent below the log of the pooled ratio (about 0.98 here), never above it.
    assert abs(math.exp(np.mean(means)) - 1.0) < 0.06
    assert min(kept) == 1.0  # every team keeps an estimate, zero counts included


def test_zero_count_units_are_estimated_and_units_without_events_are_not():
    frame = pl.DataFrame({
        "team": ["A", "B", "C", "D", "E"],
        "count": [0, 12, 9, 15, 0],
        "exposure": [1000.0] * 5,
        "ref_count": [20, 40, 30, 50, 0],
        "ref_exposure": [2000.0] * 5,
    })
    shrunk = shrink_ratios_within(frame, unit="team")
    by_team = {r["team"]: r for r in shrunk.iter_rows(named=True)}
    assert by_team["A"]["shrunk_ratio"] is not None and by_team["A"]["shrunk_ratio"] < by_team["B"]["shrunk_ratio"]
    assert by_team["A"]["shrunk_ci_low"] < by_team["A"]["shrunk_ratio"] < by_team["A"]["shrunk_ci_high"]
    assert by_team["E"]["shrunk_ratio"] is None  # no event in either group: no information
    assert shrunk["unit_count"].unique().to_list() == [4]


def test_large_counts_agree_with_normal_normal_reml():
    # With hundreds of events per unit the conditional likelihood is normal in log RR and the
    # model is the classic normal-normal one; its REML mu and tau must agree.
    rng = np.random.default_rng(5)
    true_log = rng.normal(0.4, 0.3, 15)
    frame = _units(rng, true_log, np.full(15, 800.0), ref_expected=3000.0)
    shrunk = shrink_ratios_within(frame, unit="team")
    y = (np.log(frame["count"] / frame["exposure"])
         - np.log(frame["ref_count"] / frame["ref_exposure"])).to_numpy()
    v = (1 / frame["count"] + 1 / frame["ref_count"]).to_numpy()

    def restricted(tau2):
        w = 1 / (v + tau2)
        mu = np.sum(w * y) / np.sum(w)
        return 0.5 * (np.sum(np.log(v + tau2)) + np.log(np.sum(w)) + np.sum(w * (y - mu) ** 2))

    tau2 = optimize.minimize_scalar(restricted, bounds=(0, 5), method="bounded").x
    w = 1 / (v + tau2)
    assert shrunk["tau"][0] == pytest.approx(math.sqrt(tau2), rel=0.1)
    assert math.log(shrunk["mean_ratio"][0]) == pytest.approx(np.sum(w * y) / np.sum(w), abs=0.02)
    # posterior means of the normal-normal model, within a grid step or two
    b = tau2 / (tau2 + v)
    mu = np.sum(w * y) / np.sum(w)
    np.testing.assert_allclose(np.log(shrunk["shrunk_ratio"].to_numpy()), mu + b * (y - mu), atol=0.03)


def test_posterior_quantiles_are_not_shifted_by_the_grid():
    # Review finding (5 December 2026): the quantiles were read at the grid points, but the
    # cumulative posterior mass of a point's cell is only reached at the cell's upper edge, so
    # every shrunk ratio and bound came out half a grid step (0.0125 on the log scale) too low.
    # Exactly normal likelihoods (sd 0.08, three grid steps; means off the grid points): the
    # posterior at the returned tau-hat, mu integrated out under its flat prior, is normal.
    rng = np.random.default_rng(1)
    y, v = rng.normal(0.3, 0.3, 40), 0.08**2
    median, low, high, mu_hat, tau = shrink_unit_likelihoods(
        -((ETA_GRID[None, :] - y[:, None]) ** 2) / (2 * v))
    b = tau**2 / (tau**2 + v)
    mean = y.mean() + b * (y - y.mean())
    sd = np.sqrt(b * v + (1 - b) ** 2 * (v + tau**2) / y.size)
    z = stats.norm.ppf(0.975)
    assert mu_hat == pytest.approx(y.mean(), abs=1e-4)
    np.testing.assert_allclose(median, mean, atol=1e-4)
    # NOTE: the posterior grid's cells widen the posterior by their own variance, h**2 / 12:
    # 0.0002 at each bound here, in opposite directions (0.0007 on cells of 0.025).
    np.testing.assert_allclose(low, mean - z * sd, atol=5e-4)
    np.testing.assert_allclose(high, mean + z * sd, atol=5e-4)


def test_gaussian_filter_adds_tau_squared_to_the_variance_at_every_length():
    # Each tau is convolved on a transform of its own length (`_GaussianFilter.many`): a normal
    # density of sd 0.1 convolved with N(0, tau^2) is the normal of variance 0.01 + tau^2, for
    # small and large tau alike (lengths from 484 to over 4,000 points).
    sd = 0.1
    row = stats.norm.pdf(ETA_GRID, 0.2, sd)[None, :]
    taus = np.array([0.0, 0.01, 0.05, 0.3, 1.0, 4.0])
    smoothed = _GaussianFilter(row, ETA_GRID[1] - ETA_GRID[0]).many(taus)
    for tau, got in zip(taus, smoothed[:, 0, :], strict=True):
        expected = stats.norm.pdf(ETA_GRID, 0.2, math.hypot(sd, tau))
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9 * expected.max())


def test_midpoints_are_exact_for_quadratic_log_likelihoods():
    rows = np.stack([-((ETA_GRID - 0.31) ** 2) / (2 * 0.004**2), 3 * ETA_GRID - ETA_GRID**2])
    expected = np.stack([-((POSTERIOR_GRID - 0.31) ** 2) / (2 * 0.004**2),
                         3 * POSTERIOR_GRID - POSTERIOR_GRID**2])
    np.testing.assert_allclose(_with_midpoints(rows), expected, rtol=1e-12, atol=1e-6)


def test_log_likelihoods_equal_the_binomial_definition():
    # The conditional log-likelihoods take log(1 + e^-x) and log(1 + e^x) from one exponential
    # and one logarithm (a quarter of the shrinkage's time): equal to numpy's logaddexp to
    # within rounding, at x = 0, at large |x| and in between.
    rng = np.random.default_rng(3)
    offset = np.concatenate([[-ETA_GRID[240], -ETA_GRID[0], 40.0, -40.0, 700.0],
                             rng.normal(0.0, 3.0, 200)])
    count = rng.poisson(3.0, offset.size).astype(float)
    ref_count = rng.poisson(30.0, offset.size).astype(float)
    units = [slice(0, 5), slice(5, 105), slice(105, offset.size)]
    deffs = [1.0, 1.7, 3.2]
    x = ETA_GRID[:, None] + offset[None, :]
    terms = -(count * np.logaddexp(0.0, -x) + ref_count * np.logaddexp(0.0, x))
    expected = np.array([terms[:, u].sum(axis=1) / d for u, d in zip(units, deffs)])
    got = _conditional_log_likelihoods(count, ref_count, offset, units, deffs)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-10)


def test_shrinkage_pulls_toward_the_mean_and_narrows():
    rng = np.random.default_rng(8)
    frame = _units(rng, rng.normal(0.3, 0.2, 12), rng.uniform(5, 60, 12))
    shrunk = shrink_ratios_within(frame, unit="team")
    own = (np.log((frame["count"] + 0.5) / frame["exposure"])
           - np.log(frame["ref_count"] / frame["ref_exposure"])).to_numpy()
    mu = math.log(shrunk["mean_ratio"][0])
    est = np.log(shrunk["shrunk_ratio"].to_numpy())
    assert np.all(np.abs(est - mu) <= np.abs(own - mu) + 0.05)
    own_width = 2 * 1.96 * np.sqrt(1 / (frame["count"] + 0.5) + 1 / frame["ref_count"]).to_numpy()
    width = np.log(shrunk["shrunk_ci_high"].to_numpy()) - np.log(shrunk["shrunk_ci_low"].to_numpy())
    assert np.all(width < own_width)


def test_design_effect_divides_the_counts():
    # Effective counts: a design effect of 4 is the same evidence as a quarter of the events.
    rng = np.random.default_rng(2)
    frame = _units(rng, rng.normal(0.3, 0.3, 10), rng.uniform(20, 80, 10))
    clustered = shrink_ratios_within(frame.with_columns(deff=pl.lit(4.0)), unit="team",
                                     design_effect="deff")
    quartered = shrink_ratios_within(
        frame.with_columns(pl.col("count", "ref_count") / 4), unit="team")
    for column in SHRINKAGE_COLUMNS[:5]:
        np.testing.assert_allclose(clustered[column].to_numpy(), quartered[column].to_numpy())
    plain = shrink_ratios_within(frame, unit="team")
    assert clustered["tau"][0] < plain["tau"][0]  # more noise within, less left between


def test_shrink_within_groups_equals_separate_calls():
    rng = np.random.default_rng(4)
    a = _units(rng, rng.normal(0.2, 0.3, 8), rng.uniform(10, 50, 8)).with_columns(origin=pl.lit("MA"))
    b = _units(rng, rng.normal(0.6, 0.1, 8), rng.uniform(10, 50, 8)).with_columns(origin=pl.lit("TR"))
    together = shrink_ratios_within(pl.concat([b, a]), unit="team", by="origin")
    assert together.columns == ["origin", "team", *SHRINKAGE_COLUMNS]
    assert together["origin"].to_list() == ["MA"] * 8 + ["TR"] * 8
    alone = shrink_ratios_within(a, unit="team")
    np.testing.assert_allclose(together.filter(origin="MA")["shrunk_ratio"].to_numpy(),
                               alone["shrunk_ratio"].to_numpy())
    single = shrink_ratios_within(a.head(1), unit="team")
    assert single["shrunk_ratio"].to_list() == [None]


def test_groups_fitted_in_threads_give_the_numbers_of_one_thread(monkeypatch):
    import assets.stats.shrinkage as shrinkage

    rng = np.random.default_rng(7)
    frame = pl.concat([
        _units(rng, rng.normal(mean, 0.3, 12), rng.uniform(0.5, 40, 12)).with_columns(
            origin=pl.lit(f"O{i}"))
        for i, mean in enumerate(np.linspace(-0.5, 1.0, 9))
    ])
    threaded = shrink_ratios_within(frame, unit="team", by="origin")
    monkeypatch.setattr(shrinkage, "available_processors", lambda: 1)
    one_thread = shrink_ratios_within(frame, unit="team", by="origin")
    assert threaded.equals(one_thread, null_equal=True)


# --------------------------------------------------------------------------------------------
# Benjamini–Hochberg


def test_bh_q_values_known_example_and_nulls():
    q = bh_q_values(pl.Series([0.01, None, 0.04, math.nan, 0.03]))
    assert q.to_list() == [pytest.approx(0.03), None, pytest.approx(0.04), None, pytest.approx(0.04)]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        bh_q_values([0.5, 1.5])
    assert bh_q_values([None, None]).to_list() == [None, None]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(min_value=0, max_value=1)), min_size=1, max_size=40))
def test_bh_q_at_least_p_and_monotone(p_values):
    q = bh_q_values(p_values).to_list()
    pairs = [(p, qq) for p, qq in zip(p_values, q, strict=True) if p is not None]
    assert all(qq is None for p, qq in zip(p_values, q, strict=True) if p is None)
    for p, qq in pairs:
        assert p <= qq + 1e-12 and qq <= 1.0
    ordered = sorted(pairs)
    for (p1, q1), (p2, q2) in zip(ordered, ordered[1:], strict=False):
        assert q1 <= q2 + 1e-12


# --------------------------------------------------------------------------------------------
# Funnel limits


def test_exact_funnel_limits_interpolate_poisson_quantiles():
    limits = funnel_limits([20.0], levels=[0.95])
    row = limits.row(0, named=True)
    # upper: Poisson(20) 97.5% quantile with interpolation (Spiegelhalter 2005, appendix)
    y_p = stats.poisson.ppf(0.975, 20)
    a = (stats.poisson.cdf(y_p, 20) - 0.975) / (stats.poisson.cdf(y_p, 20) - stats.poisson.cdf(y_p - 1, 20))
    assert row["limit_high"] == pytest.approx((y_p - a) / 20)
    assert row["limit_low"] < 1 < row["limit_high"]


def test_funnel_narrows_with_expected_and_approaches_normal_limits():
    expected = [5.0, 50.0, 500.0, 50_000.0]
    exact = funnel_limits(expected, levels=[0.95, 0.998])
    normal = funnel_limits(expected, levels=[0.95, 0.998], method="normal")
    for level in (0.95, 0.998):
        widths = exact.filter(pl.col("level") == level).select(pl.col("limit_high") - pl.col("limit_low"))
        assert widths.to_series().is_sorted(descending=True)
    big_exact = exact.filter(pl.col("expected") == 50_000.0, pl.col("level") == 0.95).row(0, named=True)
    big_normal = normal.filter(pl.col("expected") == 50_000.0, pl.col("level") == 0.95).row(0, named=True)
    assert big_exact["limit_high"] == pytest.approx(big_normal["limit_high"], abs=1e-3)
    wide = exact.filter(pl.col("level") == 0.998)["limit_high"].to_numpy()
    assert np.all(wide > exact.filter(pl.col("level") == 0.95)["limit_high"].to_numpy())


def test_overdispersion_stretches_limits_by_root_phi():
    plain = funnel_limits([400.0], levels=[0.95], method="normal").row(0, named=True)
    inflated = funnel_limits([400.0], levels=[0.95], method="normal", overdispersion=4.0).row(0, named=True)
    assert inflated["limit_high"] - 1 == pytest.approx(2 * (plain["limit_high"] - 1))
    assert inflated["limit_low"] == pytest.approx(1 - 2 * (1 - plain["limit_low"]))
    with pytest.raises(ValueError, match="overdispersion"):
        funnel_limits([400.0], overdispersion=0.5)


def test_overdispersion_estimate_detects_extra_variation():
    rng = np.random.default_rng(7)
    expected = rng.uniform(50, 500, 300)
    poisson = rng.poisson(expected)
    assert estimate_funnel_overdispersion(poisson, expected) == pytest.approx(1.0, abs=0.25)
    overdispersed = rng.poisson(expected * rng.gamma(20, 1 / 20, 300))
    assert estimate_funnel_overdispersion(overdispersed, expected) > 3


# --------------------------------------------------------------------------------------------
# Missing-origin bounds


def test_missing_origin_bounds_formula_and_bracket_the_observed_ratio():
    bounds = missing_origin_bounds(
        pl.Series([10, 0, 5]), pl.Series([100.0, 100.0, 100.0]), pl.Series([20, 0, 0]),
        pl.Series([200.0, 100.0, 100.0]), pl.Series([5, 0, 3]),
    )
    first = bounds.row(0, named=True)
    assert first["ratio_lower_bound"] == pytest.approx((10 / 100) / (25 / 200))
    assert first["ratio_upper_bound"] == pytest.approx((15 / 100) / (20 / 200))
    assert first["ratio_lower_bound"] <= (10 / 100) / (20 / 200) <= first["ratio_upper_bound"]
    assert bounds.row(1) == (None, None)  # nothing observed at all
    assert bounds.row(2, named=True)["ratio_upper_bound"] == math.inf
    with pytest.raises(ValueError, match="denominator"):
        missing_origin_bounds(1, 0.0, 1, 1.0, 1)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(0, 1000), st.integers(1, 1000), st.integers(0, 200), st.integers(0, 200),
    st.floats(1, 1e6), st.floats(1, 1e6),
)
def test_bounds_contain_every_allocation_of_unlinked_queries(n_g, n_ref, unlinked, split, e_g, e_ref):
    to_group = min(split, unlinked)
    bounds = missing_origin_bounds(n_g, e_g, n_ref, e_ref, unlinked).row(0, named=True)
    allocated = ((n_g + to_group) / e_g) / ((n_ref + unlinked - to_group) / e_ref)
    assert bounds["ratio_lower_bound"] <= allocated * (1 + 1e-12)
    assert allocated <= bounds["ratio_upper_bound"] * (1 + 1e-12)


def test_exact_funnel_limits_match_the_poisson_distribution() -> None:
    table = funnel_limits([4.0, 25.0, 100.0, 10_000.0], levels=(0.95,))
    limits = SimpleNamespace(expected=table["expected"].to_list(),
                             ratio_low=table["limit_low"].to_list(),
                             ratio_high=table["limit_high"].to_list())
    # For large E the limits approach the normal approximation 1 ± 1.96/√E.
    assert limits.ratio_low[-1] == pytest.approx(1 - 1.96 / 100, abs=2e-3)
    assert limits.ratio_high[-1] == pytest.approx(1 + 1.96 / 100, abs=2e-3)
    for e, low, high in zip(limits.expected, limits.ratio_low, limits.ratio_high):
        assert low < 1 < high
        # The interpolated limit lies between the neighbouring integers of the Poisson quantile.
        q_low = stats.poisson.ppf(0.025, e)
        q_high = stats.poisson.ppf(0.975, e)
        assert q_low - 1 <= low * e <= q_low
        assert q_high - 1 <= high * e <= q_high
    assert np.all(np.diff(limits.ratio_high) < 0)  # the funnel narrows
    with pytest.raises(ValueError):
        funnel_limits([0.0], levels=(0.95,))


def test_funnel_limits_are_never_negative_at_tiny_expected_counts():
    # Review finding: the interpolation gave upper limits -24.0, -1.52 and -0.27 here.
    limits = funnel_limits([0.001, 0.01, 0.02], levels=(0.95,))
    assert (limits["limit_low"] >= 0).all() and (limits["limit_high"] >= 0).all()
    assert (limits["limit_high"] >= limits["limit_low"]).all()


@settings(max_examples=100, deadline=None)
@given(st.floats(min_value=1e-4, max_value=1e4), st.floats(min_value=1.0, max_value=10.0))
def test_funnel_limits_bracket_in_order(expected, overdispersion):
    limits = funnel_limits([expected], levels=(0.95, 0.998), overdispersion=overdispersion)
    inner, outer = limits.filter(level=0.95).row(0, named=True), limits.filter(level=0.998).row(0, named=True)
    assert 0 <= outer["limit_low"] <= inner["limit_low"] <= inner["limit_high"] <= outer["limit_high"]
