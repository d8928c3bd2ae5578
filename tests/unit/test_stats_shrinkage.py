"""Shrinkage (metafor's BCG results), BH q-values, funnel limits and missing-origin bounds."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from assets.stats.shrinkage import (
    SHRINKAGE_COLUMNS,
    bh_q_values,
    compute_log_rate_ratios,
    estimate_funnel_overdispersion,
    estimate_tau2,
    funnel_limits,
    missing_origin_bounds,
    shrink_log_ratios,
    shrink_log_ratios_within,
)

# BCG vaccine trials (Colditz et al. 1994), metafor's dat.bcg: TB cases / non-cases in the
# vaccinated (t) and control (c) arms. metafor's README gives the REML fit of the log risk
# ratios: tau^2 = 0.3132, estimate -0.7145; its test suite (checked against Stata's metan)
# gives DL: tau^2 = 0.3088, estimate -0.7141 (wviechtb/metafor README.md and
# tests/testthat/test_misc_metan_vs_rma.uni_with_dat.bcg.r).
BCG_TPOS = np.array([4, 6, 3, 62, 33, 180, 8, 505, 29, 17, 186, 5, 27])
BCG_TNEG = np.array([119, 300, 228, 13536, 5036, 1361, 2537, 87886, 7470, 1699, 50448, 2493, 16886])
BCG_CPOS = np.array([11, 29, 11, 248, 47, 372, 10, 499, 45, 65, 141, 3, 29])
BCG_CNEG = np.array([128, 274, 209, 12619, 5761, 1079, 619, 87892, 7232, 1600, 27197, 2338, 17825])


def _bcg() -> tuple[np.ndarray, np.ndarray]:
    yi = np.log(BCG_TPOS / (BCG_TPOS + BCG_TNEG)) - np.log(BCG_CPOS / (BCG_CPOS + BCG_CNEG))
    vi = 1 / BCG_TPOS - 1 / (BCG_TPOS + BCG_TNEG) + 1 / BCG_CPOS - 1 / (BCG_CPOS + BCG_CNEG)
    return yi, np.sqrt(vi)


@pytest.mark.parametrize(("method", "tau2", "mean"), [("REML", 0.3132, -0.7145), ("DL", 0.3088, -0.7141)])
def test_tau2_and_mean_match_metafor_on_bcg(method, tau2, mean):
    yi, sei = _bcg()
    assert estimate_tau2(yi, sei, method=method) == pytest.approx(tau2, abs=5e-5)
    shrunk = shrink_log_ratios(yi, sei, method=method)
    assert shrunk["tau2"].unique().to_list() == [pytest.approx(tau2, abs=5e-5)]
    assert shrunk["mean_log_ratio"][0] == pytest.approx(mean, abs=5e-5)
    assert shrunk["tau2_method"].unique().to_list() == [method]


def test_reml_solves_its_estimating_equation():
    yi, sei = _bcg()
    tau2 = estimate_tau2(yi, sei, method="REML")
    v = sei**2
    w = 1 / (v + tau2)
    mu = np.sum(w * yi) / np.sum(w)
    fixed_point = np.sum(w**2 * ((yi - mu) ** 2 + 1 / np.sum(w) - v)) / np.sum(w**2)
    assert tau2 == pytest.approx(fixed_point, rel=1e-6)


def test_dl_is_the_truncated_moment_estimator():
    yi, sei = _bcg()
    w = 1 / sei**2
    q = np.sum(w * (yi - np.sum(w * yi) / np.sum(w)) ** 2)
    c = np.sum(w) - np.sum(w**2) / np.sum(w)
    assert estimate_tau2(yi, sei, method="DL") == pytest.approx((q - (yi.size - 1)) / c, rel=1e-10)
    # statsmodels' combine_effects does not truncate a negative moment estimate; we do
    assert estimate_tau2([0.1, 0.1, 0.1], [0.2, 0.3, 0.4], method="DL") == 0.0


def test_homogeneous_units_give_zero_tau2_and_full_pooling():
    y = np.array([0.1, 0.1, 0.1, 0.1])
    se = np.array([0.2, 0.3, 0.4, 0.5])
    for method in ("REML", "DL"):
        shrunk = shrink_log_ratios(y, se, method=method)
        assert shrunk["tau2"][0] == 0.0
        np.testing.assert_allclose(shrunk["shrunk_log_ratio"].to_numpy(), 0.1)
        assert shrunk["shrinkage_weight"].to_list() == [0.0] * 4


def test_shrinkage_moves_toward_mean_and_narrows():
    yi, sei = _bcg()
    shrunk = shrink_log_ratios(yi, sei, level=0.95)
    mu = shrunk["mean_log_ratio"][0]
    est = shrunk["shrunk_log_ratio"].to_numpy()
    assert np.all(np.abs(est - mu) <= np.abs(yi - mu) + 1e-12)
    assert np.all(shrunk["posterior_sd"].to_numpy() < sei)
    # the least precise trial (largest SE) is shrunk the most
    weights = shrunk["shrinkage_weight"].to_numpy()
    assert np.argmin(weights) == np.argmax(sei)
    row = shrunk.row(0, named=True)
    z = stats.norm.ppf(0.975)
    assert row["shrunk_ci_low"] == pytest.approx(math.exp(row["shrunk_log_ratio"] - z * row["posterior_sd"]))
    assert row["shrunk_ratio"] == pytest.approx(math.exp(row["shrunk_log_ratio"]))


def test_units_with_infinite_or_missing_standard_error_are_excluded_and_null():
    yi, sei = _bcg()
    y = pl.Series(list(yi) + [math.inf, None, 0.3])
    se = pl.Series(list(sei) + [math.inf, 0.2, math.nan])
    shrunk = shrink_log_ratios(y, se)
    assert shrunk.height == 16
    tail = shrunk.tail(3)
    for column in SHRINKAGE_COLUMNS[:6]:
        assert tail[column].null_count() == 3
    # τ² is estimated from the 13 usable units only
    assert shrunk["tau2"][0] == pytest.approx(0.3132, abs=5e-5)


def test_fewer_than_two_units_are_not_shrunk():
    shrunk = shrink_log_ratios([0.5], [0.1])
    assert shrunk["shrunk_log_ratio"].to_list() == [None]
    assert shrunk["tau2"].to_list() == [None]


def test_continuity_correction_makes_zero_cells_usable():
    plain = compute_log_rate_ratios([0, 10, 20], [100.0, 100.0, 100.0], [5, 10, 10], [100.0, 50.0, 100.0])
    assert plain["log_ratio"][0] == -math.inf
    corrected = compute_log_rate_ratios(
        [0, 10, 20], [100.0, 100.0, 100.0], [5, 10, 10], [100.0, 50.0, 100.0], continuity=0.5
    )
    assert corrected["is_continuity_corrected"].to_list() == [True, False, False]
    assert corrected["log_ratio"][0] == pytest.approx(math.log(0.5 / 5.5))
    assert corrected["std_error"][1] == pytest.approx(math.sqrt(0.2))
    assert corrected["log_ratio"][1] == pytest.approx(math.log(0.5))
    with pytest.raises(ValueError, match="denominator"):
        compute_log_rate_ratios([1], [0.0], [1], [1.0])


def test_shrink_within_groups_equals_separate_calls_and_keeps_row_order():
    yi, sei = _bcg()
    frame = pl.DataFrame(
        {
            "origin": ["MA", "TR"] * 6 + ["MA"],
            "team": [f"T{i:02d}" for i in range(13)],
            "log_ratio": yi,
            "std_error": sei,
        }
    )
    shrunk = shrink_log_ratios_within(frame, log_ratio="log_ratio", std_error="std_error", by="origin")
    assert shrunk["team"].to_list() == frame["team"].to_list()
    assert shrunk.columns == [*frame.columns, *SHRINKAGE_COLUMNS]
    ma = frame.filter(pl.col("origin") == "MA")
    alone = shrink_log_ratios(ma["log_ratio"], ma["std_error"])
    np.testing.assert_allclose(
        shrunk.filter(pl.col("origin") == "MA")["shrunk_log_ratio"].to_numpy(),
        alone["shrunk_log_ratio"].to_numpy(),
    )
    assert shrunk.filter(pl.col("origin") == "TR")["tau2"][0] != alone["tau2"][0]


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
