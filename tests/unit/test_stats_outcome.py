"""Outcome (hit-rate) test (assets/stats/outcome.py)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from statsmodels.stats.proportion import proportion_confint
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.proportion import confint_proportions_2indep

from assets.schema import ORIGIN_CODES
from assets.stats.outcome import (
    OUTPUT_SCHEMA,
    compute_outcome_test,
    newcombe_difference,
    wilson_interval,
)

# Newcombe, R. G. (1998). Interval estimation for the difference between independent
# proportions: comparison of eleven methods. Statistics in Medicine 17, 873-890, Table II,
# method 10 (score interval, no continuity correction), 95%: (k1, n1, k2, n2) -> (low, high).
NEWCOMBE_1998_TABLE_II = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((6, 7, 2, 7), (0.0582, 0.8062)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ((0, 10, 0, 20), (-0.1611, 0.2775)),
    ((0, 10, 0, 10), (-0.2775, 0.2775)),
    ((10, 10, 0, 20), (0.6791, 1.0000)),
    ((10, 10, 0, 10), (0.6075, 1.0000)),
]


# ---------------------------------------------------------------- Wilson


def test_wilson_known_values() -> None:
    # Newcombe (1998, single proportion), Table I, method 3: 81/263 -> 0.2553 to 0.3662;
    # 0/20 -> 0 to 0.1611.
    low, high = wilson_interval([81, 0], [263, 20])
    np.testing.assert_allclose(low, [0.2553, 0.0], atol=5e-5)
    np.testing.assert_allclose(high, [0.3662, 0.1611], atol=5e-5)


def test_wilson_empty_cell_is_nan_and_bad_counts_raise() -> None:
    low, high = wilson_interval([0, 3], [0, 10])
    assert math.isnan(low[0]) and math.isnan(high[0])
    assert not math.isnan(low[1])
    with pytest.raises(ValueError):
        wilson_interval(5, 4)
    with pytest.raises(ValueError):
        wilson_interval(-1, 4)


@pytest.mark.parametrize("bad", [(math.nan, 10), (1, math.nan), (1.5, 10), (1, 10.5),
                                 (math.inf, 10)])
def test_wilson_refuses_missing_and_fractional_counts(bad) -> None:
    # Review finding: wilson_interval(nan, 10) returned NaN silently and fractions passed.
    with pytest.raises(ValueError, match="non-finite|whole"):
        wilson_interval(*bad)


def test_design_effect_is_an_effective_sample_size() -> None:
    # Korn and Graubard (1998): the interval of 20/100 with design effect 4 is that of 5/25.
    clustered = wilson_interval(20, 100, design_effect=4.0)
    effective = proportion_confint(5, 25, alpha=0.05, method="wilson")
    np.testing.assert_allclose(clustered, effective)
    with pytest.raises(ValueError, match="design effect"):
        wilson_interval(20, 100, design_effect=0.5)
    _, low1, high1 = newcombe_difference(20, 100, 30, 100)
    _, low4, high4 = newcombe_difference(20, 100, 30, 100, design_effect1=4.0, design_effect2=4.0)
    assert low4 < low1 and high4 > high1


@settings(deadline=None)  # no timing asserts: other jobs share the machine
@given(
    n=st.integers(min_value=1, max_value=100_000),
    fraction=st.floats(min_value=0.0, max_value=1.0),
    level=st.sampled_from([0.8, 0.9, 0.95, 0.99]),
)
def test_wilson_lies_in_unit_interval_and_contains_the_estimate(
    n: int, fraction: float, level: float
) -> None:
    k = round(fraction * n)
    low, high = wilson_interval(k, n, level)
    assert 0.0 <= low <= k / n <= high <= 1.0


# ---------------------------------------------------------------- Newcombe


@pytest.mark.parametrize(("counts", "published"), NEWCOMBE_1998_TABLE_II)
def test_newcombe_reproduces_table_ii(counts: tuple[int, ...], published: tuple[float, float]) -> None:
    diff, low, high = newcombe_difference(*counts)
    assert diff == pytest.approx(counts[0] / counts[1] - counts[2] / counts[3])
    assert low == pytest.approx(published[0], abs=5e-5)
    assert high == pytest.approx(published[1], abs=5e-5)


def test_newcombe_is_vectorised_and_equals_statsmodels() -> None:
    k1, n1, k2, n2 = (np.array(v) for v in ([3, 40, 7], [10, 90, 7], [8, 33, 0], [20, 60, 12]))
    diff, low, high = newcombe_difference(k1, n1, k2, n2, level=0.9)
    for i in range(3):
        ref_low, ref_high = confint_proportions_2indep(
            k1[i], n1[i], k2[i], n2[i], method="newcomb", compare="diff", alpha=0.1
        )
        assert low[i] == pytest.approx(ref_low, abs=1e-12)
        assert high[i] == pytest.approx(ref_high, abs=1e-12)


@settings(deadline=None)  # no timing asserts: other jobs share the machine
@given(
    n1=st.integers(1, 500),
    n2=st.integers(1, 500),
    f1=st.floats(0.0, 1.0),
    f2=st.floats(0.0, 1.0),
)
def test_newcombe_contains_the_difference(n1: int, n2: int, f1: float, f2: float) -> None:
    k1, k2 = round(f1 * n1), round(f2 * n2)
    diff, low, high = newcombe_difference(k1, n1, k2, n2)
    assert -1.0 <= low <= diff + 1e-12
    assert diff - 1e-12 <= high <= 1.0


def test_newcombe_empty_side_is_nan() -> None:
    diff, low, high = newcombe_difference(3, 10, 0, 0)
    assert math.isnan(diff) and math.isnan(low) and math.isnan(high)


# ---------------------------------------------------------------- the table


def _queries() -> pl.DataFrame:
    """Crafted linked person queries with known hit counts.

    T1: NL 3 hits / 10 filled in (+5 empty), MA 1 / 10.   T2: NL 8 / 20, MA 0 filled in
    (4 empty), TR 2 / 4.   Plus 6 unlinked queries (excluded) and 2 plate queries. Every
    linked query is of another person (design effect 1).
    """
    rows: list[dict[str, object]] = []

    def add(
        team: str, origin: str | None, hit: bool | None, count: int, query_type: str = "person"
    ) -> None:
        rows.extend(
            {
                "query_type": query_type,
                "team_code": team,
                "origin": origin,
                "is_linked": origin is not None,
                "person_key": len(rows) + i if origin is not None else None,
                "hit": hit,
            }
            for i in range(count)
        )

    add("T1", "NL", True, 3)
    add("T1", "NL", False, 7)
    add("T1", "NL", None, 5)
    add("T1", "MA", True, 1)
    add("T1", "MA", False, 9)
    add("T2", "NL", True, 8)
    add("T2", "NL", False, 12)
    add("T2", "MA", None, 4)
    add("T2", "TR", True, 2)
    add("T2", "TR", False, 2)
    add("T1", None, True, 6)
    add("T1", "NL", True, 1, query_type="plate")
    add("T1", "NL", False, 1, query_type="plate")
    return pl.DataFrame(
        rows,
        schema={
            "query_type": pl.String,
            "team_code": pl.String,
            "origin": pl.String,
            "is_linked": pl.Boolean,
            "person_key": pl.UInt64,
            "hit": pl.Boolean,
        },
    )


def test_outcome_test_exact_counts_and_layout() -> None:
    result = compute_outcome_test(_queries(), origin_order=ORIGIN_CODES)
    assert result.schema == OUTPUT_SCHEMA
    columns = ["query_type", "team_code", "origin", "query_count", "hit_count", "hit_missing_count"]
    assert result.select(columns).rows() == [
        ("person", "T1", "NL", 10, 3, 5),
        ("person", "T1", "MA", 10, 1, 0),
        ("person", "T2", "NL", 20, 8, 0),
        ("person", "T2", "TR", 4, 2, 0),
        ("person", "T2", "MA", 0, 0, 4),
        ("person", "ALL", "NL", 30, 11, 5),
        ("person", "ALL", "TR", 4, 2, 0),
        ("person", "ALL", "MA", 10, 1, 4),
        ("plate", "T1", "NL", 2, 1, 0),
        ("plate", "ALL", "NL", 2, 1, 0),
    ]


def test_outcome_test_rates_and_differences() -> None:
    result = compute_outcome_test(_queries())

    def row(team: str, origin: str) -> dict[str, object]:
        return result.filter(
            (pl.col("query_type") == "person") & (pl.col("team_code") == team) & (pl.col("origin") == origin)
        ).row(0, named=True)

    ma_t1 = row("T1", "MA")
    assert ma_t1["hit_rate"] == pytest.approx(0.1)
    low, high = wilson_interval(1, 10)
    assert ma_t1["hit_rate_ci_low"] == pytest.approx(float(low))
    assert ma_t1["hit_rate_ci_high"] == pytest.approx(float(high))
    _, d_low, d_high = newcombe_difference(1, 10, 3, 10)
    assert ma_t1["hit_rate_diff"] == pytest.approx(-0.2)
    assert ma_t1["hit_rate_diff_ci_low"] == pytest.approx(float(d_low))
    assert ma_t1["hit_rate_diff_ci_high"] == pytest.approx(float(d_high))

    assert row("T1", "NL")["hit_rate_diff"] is None  # the reference is not compared with itself
    empty = row("T2", "MA")
    assert empty["hit_rate"] is None and empty["hit_rate_diff"] is None

    ma_all = row("ALL", "MA")
    assert ma_all["hit_rate"] == pytest.approx(0.1)  # pooled: 1 / 10
    assert ma_all["hit_rate_diff"] == pytest.approx(0.1 - 11 / 30)
    assert ma_all["team_count"] == 1  # only T1 has MA queries with a filled-in hit field
    assert ma_all["mean_team_hit_rate"] == pytest.approx(0.1)
    assert ma_all["mean_team_hit_rate_diff"] == pytest.approx(0.1 - 0.3)
    assert ma_all["mean_team_diff_team_count"] == 1

    nl_all = row("ALL", "NL")
    assert nl_all["hit_rate"] == pytest.approx(11 / 30)  # pooled
    assert nl_all["mean_team_hit_rate"] == pytest.approx((0.3 + 0.4) / 2)  # teams weigh equally
    assert nl_all["team_count"] == 2
    assert nl_all["mean_team_hit_rate_diff"] is None

    tr_all = row("ALL", "TR")
    assert tr_all["mean_team_hit_rate_diff"] == pytest.approx(0.5 - 0.4)
    assert row("T1", "MA")["mean_team_hit_rate"] is None  # team rows carry no team mean


def test_outcome_test_accepts_lazy_input_and_other_reference() -> None:
    eager = compute_outcome_test(_queries(), reference="MA")
    assert compute_outcome_test(_queries().lazy(), reference="MA").equals(eager)
    nl_t1 = eager.filter(
        (pl.col("team_code") == "T1") & (pl.col("origin") == "NL") & (pl.col("query_type") == "person")
    )
    assert nl_t1["hit_rate_diff"].item() == pytest.approx(0.2)


def test_repeat_queries_of_one_person_widen_the_hit_rate_interval() -> None:
    # Two persons queried 10 times each, one always a hit and one never: 10 / 20 hits, but
    # only two independent people. Persons as clusters: the variance is
    # Σ(h_i - p n_i)² / n² = (5² + 5²) / 20² against the binomial p(1-p)/n = 0.25 / 20.
    rows = [{"query_type": "person", "team_code": "T1", "origin": "MA", "is_linked": True,
             "person_key": key, "hit": hit} for key, hit in ((1, True), (2, False)) for _ in range(10)]
    rows += [{"query_type": "person", "team_code": "T1", "origin": "NL", "is_linked": True,
              "person_key": 10 + i, "hit": i % 2 == 0} for i in range(20)]
    frame = pl.DataFrame(rows, schema_overrides={"person_key": pl.UInt64})
    clustered = compute_outcome_test(frame).filter(team_code="T1", origin="MA").row(0, named=True)
    independent = compute_outcome_test(frame, clustered=False).filter(
        team_code="T1", origin="MA").row(0, named=True)
    deff = (50 / 400) / (0.25 / 20)
    assert clustered["design_effect"] == pytest.approx(deff)
    assert clustered["interval_method"] == "person_clustered"
    low, high = wilson_interval(10, 20, design_effect=deff)
    assert clustered["hit_rate_ci_low"] == pytest.approx(float(low))
    assert independent["design_effect"] == 1.0
    assert independent["hit_rate_ci_low"] > clustered["hit_rate_ci_low"]
    nl = compute_outcome_test(frame).filter(team_code="T1", origin="NL").row(0, named=True)
    assert nl["design_effect"] == 1.0  # one query per person


def test_a_person_queried_in_two_teams_is_one_cluster_of_the_whole_area() -> None:
    # Person 1 (MA): 5 queries in T1 and 5 in T2, all hits; person 2 (MA): 5 in T1 and 5 in T2,
    # none. Per team each cell has 5 / 10 hits from two persons of 5 queries; over the whole
    # area 10 / 20 hits from the same two persons of 10 queries each, not four of 5:
    # Σ(h_i − p n_i)² / n² = (5² + 5²) / 20² against p(1 − p)/n = 0.25 / 20, a design effect
    # of 10 (four clusters of 5 would give 5).
    rows = [{"query_type": "person", "team_code": team, "origin": "MA", "is_linked": True,
             "person_key": key, "hit": hit}
            for team in ("T1", "T2") for key, hit in ((1, True), (2, False)) for _ in range(5)]
    frame = pl.DataFrame(rows, schema_overrides={"person_key": pl.UInt64})
    table = compute_outcome_test(frame)
    assert table.filter(team_code="T1", origin="MA")["design_effect"].item() == pytest.approx(5.0)
    whole = table.filter(team_code="ALL", origin="MA").row(0, named=True)
    assert (whole["query_count"], whole["hit_count"]) == (20, 10)
    assert whole["design_effect"] == pytest.approx((50 / 400) / (0.25 / 20))
