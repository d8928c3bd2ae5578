"""Veil of darkness (assets/stats/darkness.py) and R's natural spline (assets/stats/splines.py)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import polars as pl
import hypothesis.strategies as st
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from scipy.interpolate import BSpline

from assets.schema import ORIGIN_CODES
from assets.stats.darkness import (
    OUTPUT_SCHEMA,
    VeilOfDarknessError,
    compute_veil_of_darkness,
    count_veil_of_darkness_rows,
    fit_veil_of_darkness,
)
from assets.stats.splines import (
    natural_spline_basis,
    natural_spline_knots,
    quantiles_of_counts,
)
from assets.stats.sun import tag_darkness

VOD_CASE = Path(__file__).parents[1] / "data" / "vod_spline_case" / "vod_synthetic.csv"

# R 4.5.1: splines::ns(1:10, df = 4), row-major, as recorded (full precision) in a public
# Scala test suite of an R-compatible natural spline ("NSpline.fit matches splines::ns for
# x=1:10, df=4 (R 4.5.1)"), found with the project's code search.
R_NS_1_TO_10_DF4 = np.array(
    [
        [0.0, 0.0, 0.0, 0.0],
        [0.0146319158664838, -0.105267498394169, 0.315802495182507, -0.210534996788338],
        [0.11705532693187, -0.16601658337054, 0.49804975011162, -0.33203316674108],
        [0.37037037037037, -0.139822421471322, 0.437985782932485, -0.29199052195499],
        [0.622770919067215, -0.00248207889064996, 0.242700008962759, -0.161800005975173],
        [0.622770919067215, 0.255625298527632, 0.124070606474716, -0.0808847481665001],
        [0.37037037037037, 0.524449008875723, 0.148875195595053, -0.049867414347319],
        [0.11705532693187, 0.575413155660069, 0.238095238095238, 0.0694362793128225],
        [0.0146319158664838, 0.304069501600366, 0.333333333333333, 0.347965249199817],
        [0.0, -0.142857142857143, 0.428571428571429, 0.714285714285714],
    ]
)

# R: cat(ns(1:10, df = 5, intercept = TRUE), sep = ",") with options(digits = 17), column-major,
# as recorded in the test suite of a public Rust port of edgeR (first two columns).
R_NS_1_TO_10_DF5_INTERCEPT_COLUMNS_1_2 = np.array(
    [
        [-0.267261241912424, 0.243465876939416, 0.563319734782542, 0.534154130643652,
         0.282669497191026, 0.0747677460437111, 0.00588550770606472, 0.0, 0.0, 0.0],
        [0.0, 0.0146319158664838, 0.11705532693187, 0.37037037037037, 0.622770919067215,
         0.622770919067215, 0.37037037037037, 0.11705532693187, 0.0146319158664838, 0.0],
    ]
).T


# ---------------------------------------------------------------- splines


def test_ns_equals_r_output_for_1_to_10() -> None:
    basis = natural_spline_basis(np.arange(1, 11), df=4)
    np.testing.assert_allclose(basis, R_NS_1_TO_10_DF4, atol=1e-12)


def test_ns_with_intercept_equals_r_output() -> None:
    basis = natural_spline_basis(np.arange(1, 11), df=5, intercept=True)
    assert basis.shape == (10, 5)
    np.testing.assert_allclose(basis[:, :2], R_NS_1_TO_10_DF5_INTERCEPT_COLUMNS_1_2, atol=1e-12)


@pytest.mark.parametrize("df", [1, 2, 3, 6, 9])
def test_ns_has_df_columns(df: int) -> None:
    x = np.random.default_rng(df).uniform(0, 100, 200)
    assert natural_spline_basis(x, df=df).shape == (200, df)


def test_ns_is_linear_beyond_the_boundary_knots() -> None:
    x = np.linspace(-5.0, 15.0, 81)  # boundary knots 0 and 10: 20 points below, 20 above
    basis = natural_spline_basis(x, knots=[2.5, 5.0, 7.5], boundary_knots=(0.0, 10.0))
    below, above = basis[x <= 0], basis[x >= 10]
    np.testing.assert_allclose(np.diff(below, n=2, axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(np.diff(above, n=2, axis=0), 0.0, atol=1e-12)
    # ... while inside it is not linear
    assert np.abs(np.diff(basis[(x > 0) & (x < 10)], n=2, axis=0)).max() > 1e-4


def test_ns_spans_straight_lines_and_ignores_row_order() -> None:
    x = np.random.default_rng(3).uniform(1000, 1400, 500)
    basis = natural_spline_basis(x, df=6)
    design = np.column_stack([np.ones_like(x), basis])
    line = 2.0 - 0.01 * x
    coef, *_ = np.linalg.lstsq(design, line, rcond=None)
    np.testing.assert_allclose(design @ coef, line, atol=1e-9)
    order = np.random.default_rng(4).permutation(x.size)
    np.testing.assert_allclose(natural_spline_basis(x[order], df=6), basis[order], atol=1e-12)


def test_ns_keeps_missing_rows_missing() -> None:
    basis = natural_spline_basis([1.0, np.nan, 3.0, 10.0], df=3)
    assert np.isnan(basis[1]).all()
    assert not np.isnan(basis[[0, 2, 3]]).any()


def test_ns_rejects_constant_x() -> None:
    with pytest.raises(ValueError):
        natural_spline_basis([5.0, 5.0, 5.0], df=3)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from([0.0, 1.0, 2.5, 59.0, 300.0, 1439.0, -7.25, 1e-3, 1e6]),
                       st.integers(1, 50)), min_size=1, max_size=9),
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6),
)
def test_quantiles_of_counts_are_numpys_quantiles_of_the_repeated_values(pairs, probabilities
                                                                          ) -> None:
    values = np.array([v for v, _ in pairs])
    counts = np.array([c for _, c in pairs])
    probabilities = np.array(probabilities)
    repeated = np.random.default_rng(0).permutation(np.repeat(values, counts))
    expected = np.quantile(repeated, probabilities, method="linear")
    assert np.array_equal(quantiles_of_counts(values, counts, probabilities), expected)


def test_quantiles_of_counts_interpolate_as_numpy_does_to_the_last_bit() -> None:
    # numpy interpolates from the upper value at a weight of 0.5 or more: here a weight-0.5
    # formula from the lower value would differ from np.quantile in the last bit.
    values = np.array([-736.45, -162.91, -482.12, 598.85, 39.72, -292.46])
    counts = np.array([3, 1, 2, 1, 1, 3])
    probabilities = np.array([0.28, 0.485, 0.981])
    expected = np.quantile(np.repeat(values, counts), probabilities, method="linear")
    assert np.array_equal(quantiles_of_counts(values, counts, probabilities), expected)


def test_knots_of_counted_minutes_are_the_knots_of_the_minutes() -> None:
    minutes = np.random.default_rng(3).integers(900, 1300, 100_001).astype(float)
    distinct, counts = np.unique(minutes, return_counts=True)
    interior, boundary = natural_spline_knots(minutes, 6)
    counted, counted_boundary = natural_spline_knots(distinct, 6, counts=counts)
    assert np.array_equal(counted, interior) and counted_boundary == boundary


# ---------------------------------------------------------------- the published VOD case


def test_vod_spline_case_reproduces_r_to_1e5() -> None:
    case = pl.read_csv(VOD_CASE)
    result = fit_veil_of_darkness(case, is_group="is_black", is_dark="is_dark", minute="minute")
    assert result.estimate == pytest.approx(-0.150135, abs=1e-5)
    assert result.std_error == pytest.approx(0.035313, abs=1e-5)
    assert result.n == 20_923
    assert result.ci_low < result.estimate < result.ci_high
    assert result.ci_high - result.ci_low == pytest.approx(2 * 1.959964 * result.std_error, rel=1e-5)
    assert 0 < result.p_value < 1e-3
    assert result.level == 0.95
    assert "ns(minute, df = 6)" in result.method
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.estimate = 0.0  # type: ignore[misc]


def test_vod_case_is_sensitive_to_the_spline_basis() -> None:
    """A plain cubic B-spline with the same df misses R's γ by more than the 1e-5 tolerance."""
    case = pl.read_csv(VOD_CASE)
    minute = case["minute"].to_numpy().astype(float)
    interior = np.quantile(minute, [0.25, 0.5, 0.75])
    knots = np.concatenate([[minute.min()] * 4, interior, [minute.max()] * 4])
    bspline = BSpline.design_matrix(minute, knots, 3).toarray()[:, 1:]
    design = np.column_stack([np.ones_like(minute), case["is_dark"].to_numpy(), bspline])
    fit = sm.GLM(case["is_black"].to_numpy(), design, family=sm.families.Binomial()).fit()
    assert abs(fit.params[1] - (-0.150135)) > 1e-4


def test_pattern_aggregated_fit_equals_the_one_row_per_query_fit() -> None:
    """The fit collapses queries into covariate patterns; the result must not change."""
    case = pl.read_csv(VOD_CASE).with_columns(
        pl.Series("team", np.random.default_rng(8).choice(["A", "B", "C"], 20_923))
    )
    result = fit_veil_of_darkness(
        case, is_group="is_black", is_dark="is_dark", minute="minute", fixed_effects=("team",)
    )
    minute = case["minute"].to_numpy().astype(float)
    team = case["team"].to_numpy()
    design = np.column_stack(
        [
            np.ones_like(minute),
            case["is_dark"].to_numpy(),
            natural_spline_basis(minute, df=6),
            team == "B",
            team == "C",
        ]
    ).astype(float)
    per_row = sm.GLM(case["is_black"].to_numpy(), design, family=sm.families.Binomial()).fit()
    # (equal up to the IRLS convergence tolerance)
    assert result.estimate == pytest.approx(per_row.params[1], abs=1e-7)
    assert result.std_error == pytest.approx(per_row.bse[1], abs=1e-7)
    assert "team" in result.method


# ---------------------------------------------------------------- fit failures


def test_fit_refuses_without_variation() -> None:
    frame = pl.DataFrame(
        {"g": [True] * 20, "d": [True, False] * 10, "m": list(range(20))}
    )
    with pytest.raises(VeilOfDarknessError, match="group"):
        fit_veil_of_darkness(frame, is_group="g", is_dark="d", minute="m")
    frame = frame.with_columns(pl.Series("g", [True, False] * 10), pl.lit(True).alias("d"))
    with pytest.raises(VeilOfDarknessError, match="darkness"):
        fit_veil_of_darkness(frame, is_group="g", is_dark="d", minute="m")
    with pytest.raises(VeilOfDarknessError, match="no rows"):
        fit_veil_of_darkness(frame.clear(), is_group="g", is_dark="d", minute="m")


# ---------------------------------------------------------------- simulation


def make_plate_queries(seed: int, n: int, *, keep_dark: float, group: str = "MA") -> pl.DataFrame:
    """Synthetic linked plate queries over 2025 with a known darkness effect for ``group``.

    Clock times follow an evening rush-hour peak plus a flat background (15:00-24:00); the
    share of ``group`` among holders rises smoothly with the clock minute (a confounder the
    spline must absorb). Then each dark query of ``group`` is kept with probability
    ``keep_dark``, so the true odds ratio dark/light is ``keep_dark`` at every clock time:
    γ = log(keep_dark). Some unlinked queries (null origin) are added.
    """
    rng = np.random.default_rng(seed)
    day = rng.integers(0, 365, n)
    minute = np.where(rng.random(n) < 0.6, rng.normal(1050, 90, n), rng.uniform(900, 1440, n))
    minute = np.clip(minute, 900, 1439).astype(np.int64)
    local = (
        np.datetime64("2025-01-01T00:00:00", "us")
        + day.astype("timedelta64[D]")
        + minute.astype("timedelta64[m]")
        + rng.integers(0, 60, n).astype("timedelta64[s]")
    )
    share = 1.0 / (1.0 + np.exp(-(-0.8 + 0.003 * (minute - 1100))))
    origin = np.where(rng.random(n) < share, group, "NL").astype(object)
    origin[rng.random(n) < 0.05] = None
    frame = pl.DataFrame(
        {
            "query_id": [f"q{i:07d}" for i in range(n)],
            "queried_at": local,
            "team_code": rng.choice(["T01", "T02", "T03", "T04"], n),
            "origin": pl.Series(origin, dtype=pl.String),
            "keep_draw": rng.random(n),
        }
    ).with_columns(
        pl.col("queried_at").dt.replace_time_zone("Europe/Amsterdam").dt.convert_time_zone("UTC")
    )
    thinned = tag_darkness(frame).filter(
        ~((pl.col("origin") == group) & pl.col("is_dark") & (pl.col("keep_draw") >= keep_dark))
    )
    return thinned.select(
        "query_id",
        "queried_at",
        "team_code",
        "origin",
        pl.col("origin").is_not_null().alias("is_linked"),
    )


@pytest.fixture(scope="module")
def with_effect() -> pl.DataFrame:
    return compute_veil_of_darkness(make_plate_queries(11, 80_000, keep_dark=0.7))


def test_simulation_recovers_a_known_darkness_effect(with_effect: pl.DataFrame) -> None:
    truth = math.log(0.7)
    assert with_effect.height == 4
    for row in with_effect.iter_rows(named=True):
        assert row["note"] is None, row
        assert row["ci_low"] <= truth <= row["ci_high"], row
        assert row["ci_high"] < 0, row  # the effect is found, not just covered


def test_simulation_without_effect_covers_zero() -> None:
    result = compute_veil_of_darkness(make_plate_queries(12, 80_000, keep_dark=1.0))
    for row in result.iter_rows(named=True):
        assert row["note"] is None, row
        assert row["ci_low"] <= 0.0 <= row["ci_high"], row


def test_output_layout_is_fixed(with_effect: pl.DataFrame) -> None:
    assert with_effect.schema == OUTPUT_SCHEMA
    assert with_effect.select("design", "origin", "fixed_effects").rows() == [
        ("intertwilight", "MA", "none"),
        ("intertwilight", "MA", "team"),
        ("dst", "MA", "clock_change"),
        ("dst", "MA", "clock_change+team"),
    ]
    intertwilight = with_effect.row(0, named=True)
    # earliest end of civil dusk in Amsterdam ~17:08 (December), latest ~22:57 (June)
    assert 17 * 60 <= intertwilight["window_start_minute"] <= 17 * 60 + 15
    assert 22 * 60 + 50 <= intertwilight["window_end_minute"] <= 23 * 60 + 5
    assert intertwilight["group_count"] < intertwilight["n"]


def test_every_row_is_accounted_for() -> None:
    queries = make_plate_queries(13, 20_000, keep_dark=0.7)
    counts = count_veil_of_darkness_rows(queries)
    for design in ("intertwilight", "dst"):
        steps = counts.filter(pl.col("design") == design).sort("step")
        assert steps["rows_before"][0] == queries.height
        assert steps["rows_before"][1:].to_list() == steps["rows_after"][:-1].to_list()
        assert (steps["rows_before"] - steps["rows_dropped"] == steps["rows_after"]).all()
    unlinked = counts.filter((pl.col("design") == "dst") & (pl.col("step") == 1))
    assert unlinked["rows_dropped"].item() == queries["origin"].null_count()
    final = counts.filter(pl.col("design") == "intertwilight").sort("step")["rows_after"][-1]
    fitted = compute_veil_of_darkness(queries, min_cell_count=1)
    assert fitted.filter(pl.col("design") == "intertwilight")["n"][0] == final


def test_small_or_degenerate_groups_give_notes_not_errors() -> None:
    queries = make_plate_queries(14, 6_000, keep_dark=1.0)
    rare = queries.head(3).with_columns(pl.lit("TR").alias("origin"))
    only_summer = queries.filter(pl.col("queried_at").dt.month().is_in([6, 7]))
    result = compute_veil_of_darkness(pl.concat([queries, rare]), origin_order=ORIGIN_CODES)
    tr_rows = result.filter(pl.col("origin") == "TR")
    assert tr_rows.height == 4
    assert tr_rows["estimate"].null_count() == 4
    assert tr_rows["note"].str.contains("fewer than 10").all()
    # origins come in the order given (ORIGIN_CODES: NL, EU, TR, MA, ...), else alphabetically
    assert result["origin"].unique(maintain_order=True).to_list() == ["TR", "MA"]
    unordered = compute_veil_of_darkness(pl.concat([queries, rare]))
    assert unordered["origin"].unique(maintain_order=True).to_list() == ["MA", "TR"]

    summer = compute_veil_of_darkness(only_summer)
    dst = summer.filter(pl.col("design") == "dst")
    assert dst["estimate"].null_count() == dst.height == 2
    assert dst["n"].to_list() == [0, 0]

    no_reference = compute_veil_of_darkness(queries.filter(pl.col("origin") != "NL"))
    assert no_reference["note"].str.contains("reference origin NL absent").all()

    empty = compute_veil_of_darkness(queries.clear())
    assert empty.is_empty() and empty.schema == OUTPUT_SCHEMA


def test_lazy_input_gives_the_same_result() -> None:
    queries = make_plate_queries(15, 8_000, keep_dark=0.7)
    eager = compute_veil_of_darkness(queries)
    assert compute_veil_of_darkness(queries.lazy()).equals(eager)
