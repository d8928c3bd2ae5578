"""Persons as clusters: cross products of per-person counts, centred within pools of residents."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from assets.stats import clusters
from assets.stats.clusters import count_cross_products, design_effect, number_combinations


def _frame(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"cell": pl.String, "quarter": pl.String, "pool": pl.String,
                                      "person": pl.Int64, "n": pl.Int64}, orient="row")


def test_cross_products_by_hand():
    # Person 1: 3 queries in Q1 and 2 in Q2; person 2: 4 in Q1; person 3: 1 in Q2.
    frame = _frame([("A", "Q1", "p", 1, 2), ("A", "Q1", "p", 1, 1), ("A", "Q2", "p", 1, 2),
                    ("A", "Q1", "p", 2, 4), ("A", "Q2", "p", 3, 1)])
    cross = count_cross_products(frame, cluster="person", count="n", keys=["cell"],
                                 strata=["quarter"])
    got = {(q1, q2): c for _, q1, q2, c in cross.iter_rows()}
    assert got == {("Q1", "Q1"): 3**2 + 4**2, ("Q2", "Q2"): 2**2 + 1**2,
                   ("Q1", "Q2"): 3 * 2, ("Q2", "Q1"): 3 * 2}


def test_pools_centre_every_pair_of_strata():
    # Pool of 10 residents: 7 queries in Q1 (a1), 3 in Q2 (a2).
    frame = _frame([("A", "Q1", "p", 1, 3), ("A", "Q2", "p", 1, 2),
                    ("A", "Q1", "p", 2, 4), ("A", "Q2", "p", 3, 1)])
    pools = pl.DataFrame({"pool": ["p"], "pool_size": [10]})
    cross = count_cross_products(frame, cluster="person", count="n", keys=["cell"],
                                 strata=["quarter"], pool_sizes=pools)
    got = {(q1, q2): c for _, q1, q2, c in cross.iter_rows()}
    assert got[("Q1", "Q1")] == pytest.approx(25 - 7 * 7 / 10)
    assert got[("Q2", "Q2")] == pytest.approx(5 - 3 * 3 / 10)
    assert got[("Q1", "Q2")] == pytest.approx(6 - 7 * 3 / 10)


def test_visitors_outside_any_pool_are_not_centred():
    frame = _frame([("A", "Q1", None, 1, 3), ("A", "Q1", "p", 2, 2)])
    pools = pl.DataFrame({"pool": ["p"], "pool_size": [4]})
    cross = count_cross_products(frame, cluster="person", count="n", keys=["cell"],
                                 strata=["quarter"], pool_sizes=pools)
    assert cross["cross"].to_list() == [pytest.approx(9 + (4 - 4 / 4))]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.sampled_from(["Q1", "Q2", "Q3"]),
                          st.integers(1, 6)), min_size=1, max_size=40),
       st.integers(40, 200))
def test_centred_cross_products_equal_the_covariance_over_the_whole_pool(rows, pool_size):
    # Σ_i (n_iA − n̄_A)(n_iB − n̄_B) over every resident of the pool, queried or not.
    frame = _frame([("A", q, "p", person, n) for person, q, n in rows])
    cross = count_cross_products(frame, cluster="person", count="n", keys=["cell"],
                                 strata=["quarter"],
                                 pool_sizes=pl.DataFrame({"pool": ["p"], "pool_size": [pool_size]}))
    counts = np.zeros((pool_size, 3))
    for person, q, n in rows:
        counts[person, int(q[1]) - 1] += n
    deviations = counts - counts.mean(axis=0)
    expected = deviations.T @ deviations
    for _, q1, q2, value in cross.iter_rows():
        # NOTE: centring terms are summed in fixed point (2^-24 each, assets.stats.exact).
        assert value == pytest.approx(expected[int(q1[1]) - 1, int(q2[1]) - 1],
                                      abs=1e-7 * (1 + len(rows)))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["A", "B"]), st.integers(0, 5),
                          st.sampled_from(["Q1", "Q2", "Q3"]), st.sampled_from(["p", "q", None]),
                          st.integers(1, 6)), min_size=1, max_size=40),
       st.integers(40, 200))
def test_rows_taken_as_they_are_give_the_cross_products_of_summing_them_first(rows, pool_size):
    # Rows as generated: a person may have several rows in one cell and quarter.
    frame = _frame([(cell, q, pool, person, n) for cell, person, q, pool, n in rows])
    # NOTE: a person lives in one pool; a second pool of the same person is dropped.
    frame = frame.filter(pl.col("pool").eq_missing(pl.col("pool").first().over("person")))
    pools = pl.DataFrame({"pool": ["p", "q"], "pool_size": [pool_size, pool_size // 2]})
    kwargs = dict(cluster="person", count="n", keys=["cell"], strata=["quarter"],
                  pool_sizes=pools)
    assert count_cross_products(frame, summed=True, **kwargs).equals(
        count_cross_products(frame, **kwargs))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["A", "B", "C", None]), st.sampled_from(["x", "y"]),
                          st.integers(0, 8), st.sampled_from(["Q1", "Q2", "Q3"]),
                          st.sampled_from(["p", "q", None]), st.integers(1, 6)),
                min_size=1, max_size=60),
       st.integers(1, 7), st.integers(40, 200), st.booleans())
def test_the_keys_in_parts_give_the_table_of_all_at_once(rows, chunk_rows, pool_size,
                                                          categorical):
    # Keys of two columns, a null among them; parts of one row up to the whole frame; keys as
    # text or, as the pipeline has them, as categoricals (parts from their codes).
    frame = pl.DataFrame(
        [(cell, side, q, pool, person, n) for cell, side, person, q, pool, n in rows],
        schema={"cell": pl.String, "side": pl.String, "quarter": pl.String, "pool": pl.String,
                "person": pl.Int64, "n": pl.Int64}, orient="row")
    frame = frame.filter(pl.col("pool").eq_missing(pl.col("pool").first().over("person")))
    if categorical:
        frame = frame.with_columns(pl.col("cell", "side").cast(pl.Categorical))
    pools = pl.DataFrame({"pool": ["p", "q"], "pool_size": [pool_size, pool_size // 2]})
    kwargs = dict(cluster="person", count="n", keys=["cell", "side"], strata=["quarter"],
                  pool_sizes=pools)
    whole = count_cross_products(frame, **kwargs)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(clusters, "CROSS_CHUNK_ROWS", chunk_rows)
        assert_frame_equal(count_cross_products(frame, **kwargs), whole, check_exact=True)


def test_design_effect_is_one_without_clustering_and_refuses_nonsense():
    assert design_effect([10, 0], [10, 0]).tolist() == [1.0, 1.0]
    assert design_effect(10, 40).item() == 4.0
    with pytest.raises(ValueError):
        design_effect(np.nan, 1)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", None]), st.sampled_from(["x", "y", "z", None]),
                          st.integers(-3, 3) | st.none()), min_size=1, max_size=30),
       st.booleans())
def test_numbered_combinations_are_equal_exactly_where_the_rows_are(rows, categorical):
    frame = pl.DataFrame(rows, schema={"a": pl.String, "b": pl.String, "c": pl.Int64},
                         orient="row")
    if categorical:
        frame = frame.with_columns(pl.col("a", "b").cast(pl.Categorical))
    codes = frame.select(number_combinations(frame, ["a", "b", "c"])).to_series().to_list()
    for i, first in enumerate(frame.rows()):
        for j, second in enumerate(frame.rows()):
            assert (codes[i] == codes[j]) == (first == second)


def test_numbered_combinations_fall_back_to_ranks_when_codes_do_not_fit_64_bits():
    # NOTE: 70,000 categories seen before make the codes of later ones 17 bits wide: four
    # columns of them take 68 bits.
    seen = pl.Series([f"seen {i}" for i in range(70_000)]).cast(pl.Categorical)
    values = ["late a", "late b"]
    frame = pl.DataFrame({c: [values[i % 2], values[(i // 2) % 2]] * 2 for i, c in
                          enumerate("abcd")}).with_columns(pl.all().cast(pl.Categorical))
    assert min(frame.select(pl.all().to_physical().min()).row(0)) >= seen.len()
    codes = frame.select(number_combinations(frame, list("abcd"))).to_series().to_list()
    for i, first in enumerate(frame.rows()):
        for j, second in enumerate(frame.rows()):
            assert (codes[i] == codes[j]) == (first == second)


def test_a_null_key_is_one_more_value_in_the_cross_products():
    # Persons without CBS attributes have a null origin; their cross products are those of any
    # other value, whether they are counted in one stratum or in several.
    rows = [("A", "Q1", "p", 1, 2), ("A", "Q2", "p", 1, 3), ("A", "Q1", "p", 2, 4)]
    with_null = _frame([(None, *row[1:]) for row in rows])
    with_value = _frame(rows)
    kwargs = dict(cluster="person", count="n", keys=["cell"], strata=["quarter"])
    assert count_cross_products(with_null, **kwargs).drop("cell").equals(
        count_cross_products(with_value, **kwargs).drop("cell"))
