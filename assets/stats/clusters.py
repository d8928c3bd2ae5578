"""Repeat checks of one person: persons as clusters of queries (METHODS.md §8b).

Pure and Dagster-free. Queries are not independent events: ProCo exists because the same people
are checked again and again. If person i is queried n_i times, a cell's query count N = Σ n_i has
variance about Σ n_i² rather than Σ n_i (the Poisson value): treat the people queried as a Poisson
process of *persons*, each carrying a random number of queries (a compound Poisson count), and the
variance of N is E[Σ n_i²], estimated without bias by the observed Σ n_i² [1]_. For a statistic
that is a weighted sum of stratum counts, Σ_s w_s N_s, the same argument gives the variance
Σ_i (Σ_s w_s n_is)² = Σ_{s,s'} w_s w_s' G_ss' with G_ss' = Σ_i n_is n_is' the cross products of
per-person counts over strata: the cluster-robust ("sandwich") variance of Liang and Zeger [2]_
with persons as clusters. A person is in one stratum at a time, but an age band can change at New
Year, so G is not always diagonal.

* `count_cross_products`: G per key from one row per person × key × stratum;
* `design_effect`: Σn²/Σn, by which a count is divided to give Korn and Graubard's effective
  sample size [3]_, so that exact (Clopper–Pearson, Wilson) intervals built for independent
  events keep their form and their zero-count conventions under clustering.

References
----------
.. [1] Kendall, M. and Stuart, A. (1977). The Advanced Theory of Statistics, vol. 1, §5.16
   (compound Poisson variance).
.. [2] Liang, K.-Y. and Zeger, S. L. (1986). Longitudinal data analysis using generalized linear
   models. Biometrika 73(1), 13–22.
.. [3] Korn, E. L. and Graubard, B. I. (1998). Confidence intervals for proportions with small
   expected number of positive counts estimated from survey data. Survey Methodology 24(2),
   193–201.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from assets.stats.exact import fixed_point_sum

SECOND_SUFFIX = "_2"
"""Suffix of the second stratum's columns in a cross-products frame."""

CROSS_COLUMN = "cross"
"""Column of Σ_i n_is · n_is' in a cross-products frame."""

CROSS_CHUNK_ROWS = 4_000_000
"""Rows of persons' counts whose cross products are computed at once (`count_cross_products`)."""


def count_cross_products(
    frame: pl.DataFrame | pl.LazyFrame,
    *,
    cluster: str,
    count: str,
    keys: Sequence[str],
    strata: Sequence[str] = (),
    pool_sizes: pl.DataFrame | None = None,
    summed: bool = False,
) -> pl.DataFrame:
    """One row per key × pair of strata: Σ over clusters of n_s · n_s' (the cross products).

    Strata may include time (e.g. quarter, sex, age band): the cross products between two
    quarters are then the covariance of the same people's counts in both.

    With `pool_sizes`, clusters come from known pools of exchangeable people (the residents of
    one team, origin, sex and age band: those never queried have n = 0), and each pair of strata
    within one pool gets the sum of cross products of deviations from the pool means,
    Σ n_s n_s' − a_s a_s'/N (a = Σ n, N people in the pool), instead of Σ n_s n_s'. Without it
    every cluster's mean is taken as small (a compound Poisson count, people queried at a low
    rate), which overstates variances where people are queried often — a resident queried at a
    Poisson rate λ has variance λ, not λ + λ² — and makes counts of one pool in two quarters
    look correlated when they are not.

    Parameters
    ----------
    frame : one row per cluster × key × stratum (e.g. person × team × origin × sex × age band)
        with the cluster's count there; rows of the same cluster, key and stratum are summed.
    cluster : the cluster column (the person's surrogate key).
    count : the per-cluster count column (queries of that person in that cell).
    keys : columns of the cells whose variance is wanted (e.g. team_code, origin).
    strata : stratum columns; with none, one row per key holds Σ n_i².
    pool_sizes : optional; columns naming the pool (each in `frame`; a cluster whose pool
        columns are null, or whose pool is absent, is not centred: visitors from outside the
        covered area) and ``pool_size``, the number of people in it. Pool columns among
        `strata` must be equal for two strata to share a pool.
    summed : True takes the rows as they are instead of summing them per cluster × key ×
        stratum × pool column first. The result is the same (the self-join below multiplies
        every pair of a cluster's rows, which sums them); on rows already summed so (as
        `assets.disproportionality` builds them) it saves a group-by that would find one row
        per group, while on rows per query the self-join would grow with the square of a
        person's queries.

    Returns
    -------
    pl.DataFrame
        Columns ``*keys, *strata, *(s + "_2" for s in strata), cross`` (Float64), sorted. The
        diagonal (same stratum twice) is never below zero; a pair appears when a cluster is
        counted in both strata or, with pools, when both strata have counts in one pool. A null
        key or stratum is one more value (persons without CBS attributes have a null origin).
    """
    keys, strata = list(keys), list(strata)
    second = [s + SECOND_SUFFIX for s in strata]
    pools = [c for c in pool_sizes.columns if c != "pool_size"] if pool_sizes is not None else []
    outside = [c for c in pools if c not in (*keys, *strata)]
    # NOTE: a cluster (person) lies in one pool, so the pool columns do not split it. Counts
    # are whole numbers (exact sums in any order); a sum of fractions is taken over sorted
    # terms, because group_by hands rows over in no fixed order and the same inputs must give
    # byte-identical outputs.
    by_cluster = [*keys, *strata, *outside, cluster]
    # NOTE: with `summed` the rows go on as they are (the team table's call at 5M queries
    # saves 1.1 of its 3.3 s); the sums below are of whole numbers, exact in any row order.
    rows = (frame.lazy().select(*by_cluster, count) if summed
            else frame.lazy().group_by(by_cluster).agg(pl.col(count).sum())).collect()
    # NOTE: the keys a part at a time, each part about CROSS_CHUNK_ROWS rows: everything below
    # groups and joins by key, so a part's rows are those of the whole. The self-join pairs
    # every row of a person with every other of the same key, more with each quarter of
    # history, and held 2.2 GB at once in the team tables at 50M queries and 3.6 GB over two
    # years at 100M (docs/performance.md).
    parts = max(1, -(-rows.height // CROSS_CHUNK_ROWS)) if keys else 1
    # NOTE: a key's part from a hash of its columns' physical values (a categorical's codes),
    # a slice of rows at a time: numbering all rows at once held 2 GB of intermediate columns at
    # 100M queries. Hashing the categoricals themselves took 0.77 s on the team tables' 24.9M
    # rows at 50M queries, their codes 0.13 s (5.7 s in all the team tables' and themes' calls).
    # Which part a key falls in changes no result: each key's rows are all in one part.
    physical = pl.struct([pl.col(key).to_physical() for key in keys])
    part_of = pl.concat([
        rows.slice(start, CROSS_CHUNK_ROWS)
        .select((physical.hash() % parts).cast(pl.UInt16)).to_series()
        for start in range(0, rows.height, CROSS_CHUNK_ROWS)
    ]) if parts > 1 else None
    cross = pl.concat([
        _cross_products(rows if parts == 1 else rows.filter(part_of == part), cluster=cluster,
                        count=count, keys=keys, strata=strata, outside=outside,
                        pool_sizes=pool_sizes)
        for part in range(parts)
    ])
    return cross.sort([*keys, *strata, *second])


def _cross_products(rows: pl.DataFrame, *, cluster: str, count: str, keys: list[str],
                    strata: list[str], outside: list[str], pool_sizes: pl.DataFrame | None
                    ) -> pl.DataFrame:
    """The cross products (`count_cross_products`) of the keys in `rows`, one row per cluster ×
    key × stratum × `outside` pool column with `count`; unsorted."""
    second = [s + SECOND_SUFFIX for s in strata]
    pools = [c for c in pool_sizes.columns if c != "pool_size"] if pool_sizes is not None else []
    per_cluster = rows.select(*keys, *strata, *outside, cluster,
                              pl.col(count).cast(pl.Float64).alias("_n"))
    # NOTE: the keys and the strata each numbered by one integer (`number_combinations`): the
    # self-join and the group-bys below then hash two or three integers instead of up to ten
    # columns, and every row joins (a null is a value like any other), so no window has to
    # find the clusters counted in one stratum only first: the team tables' call at 5M queries
    # 3.1–3.3 → 2.5 s, at 50M 11.2–11.9 → 8.4 s (docs/performance.md).
    per_cluster = per_cluster.with_columns(
        _key=number_combinations(per_cluster, keys),
        _stratum=number_combinations(per_cluster, strata),
    )

    def names(number: str, columns: list[str]) -> pl.LazyFrame:
        """One row per value of `number` with the columns it numbers (none: the number alone)."""
        return per_cluster.select(number, *columns).unique(subset=number).lazy()

    key_names, stratum_names = names("_key", keys), names("_stratum", strata)
    per_cluster = per_cluster.lazy()
    numbered = per_cluster.select("_key", cluster, "_stratum", "_n")
    renamed = {s: s2 for s, s2 in zip(strata, second)}
    raw = (
        numbered.join(numbered.rename({"_stratum": "_stratum_2", "_n": "_n2"}),
                      on=["_key", cluster])
        .group_by("_key", "_stratum", "_stratum_2")
        .agg((pl.col("_n") * pl.col("_n2")).sum().alias("_raw"))
        .join(key_names, on="_key")
        .join(stratum_names, on="_stratum")
        .join(stratum_names.rename(renamed | {"_stratum": "_stratum_2"}), on="_stratum_2")
        .select(*keys, *strata, *second, "_raw")
    )
    is_diagonal = pl.all_horizontal([pl.col(s) == pl.col(s2) for s, s2 in zip(strata, second)]
                                    or [pl.lit(True)])
    if pool_sizes is None:
        cross = raw.with_columns(pl.col("_raw").alias(CROSS_COLUMN))
    else:
        shared = [c for c in pools if c in strata]
        totals = (
            per_cluster.group_by("_key", "_stratum", *outside)
            .agg(pl.col("_n").sum().alias("_a"))
            .join(key_names, on="_key")
            .join(stratum_names, on="_stratum")
            .drop("_key", "_stratum")
            # NOTE: the pools in the frame's types (categorical codes from PersonUnits).
            .join(pool_sizes.lazy().with_columns(pl.col(c).cast(rows.schema[c]) for c in pools),
                  on=pools, how="inner")
            .filter(pl.col("pool_size") > 0)
        )
        centring = (
            totals.join(
                totals.rename(renamed | {"_a": "_a2"}).drop("pool_size")
                .with_columns(pl.col(renamed[c]).alias(c) for c in shared),
                on=[*keys, *outside, *shared])
            .group_by([*keys, *strata, *second])
            .agg(fixed_point_sum(pl.col("_a") * pl.col("_a2") / pl.col("pool_size"))
                 .alias("_centring"))
        )
        # NOTE: a diagonal term is a sum of squared deviations: never below zero (a pool with
        # more people queried than counted residents is left uncentred there).
        cross = (
            raw.join(centring, on=[*keys, *strata, *second], how="full", coalesce=True,
                     nulls_equal=True)
            .with_columns(pl.col("_raw", "_centring").fill_null(0.0))
            .with_columns(
                pl.when(is_diagonal)
                .then(pl.col("_raw") - pl.min_horizontal("_centring", "_raw"))
                .otherwise(pl.col("_raw") - pl.col("_centring"))
                .alias(CROSS_COLUMN))
        )
    return cross.select(*keys, *strata, *second, CROSS_COLUMN).collect()


def number_combinations(frame: pl.DataFrame, columns: Sequence[str]) -> pl.Expr:
    """A UInt64 that is equal for two rows of `frame` exactly where their `columns` are equal
    (a null equal to a null): each column's integer code, packed in mixed radix.

    Categorical columns give their codes; other columns, and all of them when those codes do
    not fit in 64 bits together (a process that has seen many categories), their dense ranks.
    """
    def packed(codes: list[pl.Expr]) -> tuple[pl.Expr, int]:
        tops = frame.select(code.max() for code in codes).row(0) if codes else ()
        expression, size = pl.lit(0, pl.UInt64), 1
        for code, top in zip(codes, tops, strict=True):
            radix = (top if top is not None else 0) + 2
            # NOTE: a null takes the code after the largest.
            expression = expression * radix + code.cast(pl.UInt64).fill_null(radix - 1)
            size *= radix
        return expression, size

    physical = [pl.col(c).to_physical() for c in columns]
    categorical = [isinstance(frame.schema[c], pl.Categorical | pl.Enum) for c in columns]
    expression, size = packed([code if keep else code.rank("dense")
                               for code, keep in zip(physical, categorical, strict=True)])
    if size > 2**64:
        expression, size = packed([code.rank("dense") for code in physical])
    if size > 2**64:
        raise ValueError(f"{len(columns)} columns with too many combinations to number")
    return expression


def design_effect(count: object, sum_of_squares: object) -> np.ndarray:
    """Design effect of a count under clustering: Σn² / Σn, at least 1 (Korn and Graubard).

    A zero count shows no clustering; its design effect is 1 by convention.
    """
    n = np.asarray(count, dtype=float)
    squares = np.asarray(sum_of_squares, dtype=float)
    if np.any(~np.isfinite(n) | (n < 0)) or np.any(~np.isfinite(squares) | (squares < 0)):
        raise ValueError("counts and sums of squares must be finite and non-negative")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 0, np.maximum(1.0, squares / np.where(n > 0, n, 1.0)), 1.0)
