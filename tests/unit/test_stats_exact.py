"""Fixed-point sums: the same result in any row order (byte-identical outputs)."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from assets.stats.exact import fixed_point_mean, fixed_point_sum


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.0, 1e6, allow_nan=False), min_size=1, max_size=200),
       st.randoms(use_true_random=False))
def test_a_sum_does_not_depend_on_the_order_of_the_rows(values, random):
    rows = [(i % 3, v) for i, v in enumerate(values)]
    shuffled = rows[:]
    random.shuffle(shuffled)
    frames = [pl.DataFrame(r, schema=["g", "x"], orient="row") for r in (rows, shuffled)]
    sums = [f.lazy().group_by("g").agg(fixed_point_sum(pl.col("x"))).sort("g").collect()
            for f in frames]
    assert sums[0].equals(sums[1])
    total = frames[1].select(fixed_point_sum(pl.col("x"))).item()
    assert total == frames[0].select(fixed_point_sum(pl.col("x"))).item()
    assert abs(total - sum(values)) <= len(values) * 2.0**-24 + 1e-12 * sum(values)


def test_a_mean_skips_nulls_like_polars():
    frame = pl.DataFrame({"x": [0.1, None, 0.2, 0.3]})
    assert abs(frame.select(fixed_point_mean(pl.col("x"))).item() - 0.2) < 1e-7
