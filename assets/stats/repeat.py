"""Repeat checks: how often is the same person queried, and how concentrated are the queries?

Events are not people. A group can be over-represented in queries because more of its
members are queried, or because the same few members are queried again and again. These
tables separate the two, per query type, team and origin:

- :func:`compute_repeat_checks`: distinct persons, queries per person, the share queried
  at least 2 and 5 times, and the Gini coefficient of queries over the persons queried;
- :func:`add_proco_count` and :func:`summarise_proco_counts`: the ProCo-style count, for
  each query the number of earlier queries of the same person in the preceding 365 days,
  which is what the MEOS "Professioneel Controleren" feature shows the officer, and its
  distribution per group.

Both summaries are over linked queries (``is_linked`` and a known origin) and use the same
keys (query_type, team_code, origin); :func:`compute_repeat_tables` joins them into the rows of
``out_repeat_checks``, reading each bucket of persons once for both.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from assets.stats.outcome import sort_output_rows

PROCO_WINDOW = "365d"
"""Look-back of the ProCo count: 365 days (a fixed duration, not calendar months)."""

REPEAT_SCHEMA = pl.Schema(
    {
        "query_type": pl.String(),
        "team_code": pl.String(),
        "origin": pl.String(),
        "person_count": pl.Int64(),
        "query_count": pl.Int64(),
        "queries_per_person": pl.Float64(),
        "queries_per_person_ratio": pl.Float64(),
        "share_queried_2plus": pl.Float64(),
        "share_queried_5plus": pl.Float64(),
        "gini": pl.Float64(),
        "gini_poisson_floor": pl.Float64(),
    }
)
"""Columns of :func:`compute_repeat_checks`."""

PROCO_SCHEMA = pl.Schema(
    {
        "query_type": pl.String(),
        "team_code": pl.String(),
        "origin": pl.String(),
        "proco_query_count": pl.Int64(),
        "proco_mean": pl.Float64(),
        "proco_median": pl.Float64(),
        "proco_p90": pl.Float64(),
        "proco_share_1plus": pl.Float64(),
        "proco_share_5plus": pl.Float64(),
    }
)
"""Columns of :func:`summarise_proco_counts`."""

_KEYS = ("query_type", "team_code", "origin")


def gini(values: Sequence[float] | np.ndarray) -> float:
    """Gini coefficient of counts (0 = all equal; (n - 1)/n = one holds everything).

    Uses the sample form without small-sample correction,
    ``G = sum_i sum_j |x_i - x_j| / (2 n^2 mean)``, computed on the sorted values as
    ``2 sum_i i x_(i) / (n sum x) - (n + 1) / n``. Applied to the number of queries of each
    queried person, it measures how concentrated queries are on few persons among those
    queried (persons never queried are not in the data and not in the coefficient).

    Returns NaN for an empty input or when every value is 0 (no concentration to measure).
    Missing, non-finite, negative or fractional values are an error: they are not counts.

    References
    ----------
    Gini, C. (1912). *Variabilità e mutabilità*. Bologna: Tipografia di Paolo Cuppini.
    Damgaard, C. & Weiner, J. (2000). Describing inequality in plant size or fecundity.
    *Ecology* 81(4), 1139-1142 (the sorted-values formula).
    """
    x = np.sort(np.asarray(values, dtype=float))
    if np.any(~np.isfinite(x)):
        raise ValueError("values hold missing or non-finite entries: they are not counts")
    if np.any(x < 0) or np.any(x != np.floor(x)):
        raise ValueError("values must be non-negative whole numbers (counts)")
    if x.size == 0 or x.sum() == 0:
        return float("nan")
    n = x.size
    ranks = np.arange(1, n + 1)
    return float(2.0 * np.sum(ranks * x) / (n * x.sum()) - (n + 1) / n)


def poisson_gini_floor(queries_per_person: Sequence[float] | np.ndarray) -> np.ndarray:
    """The Gini coefficient among queried persons when every person has the same propensity.

    If everyone of a group had the same Poisson rate λ, the counts of the persons queried at
    least once follow the zero-truncated Poisson distribution, whose mean λ/(1 − e^−λ) is the
    group's queries per person. Its Gini coefficient is not zero and depends on the rate (0.18
    at 1.3 queries per person, 0.29 at 2.5, 0.24 at 5). A group's `gini` above this floor measures
    concentration beyond chance; below it, differences in `gini` between groups partly reflect
    their different query rates. NaN for a mean below 1 or missing.

    References
    ----------
    Cohen, A. C. (1960). Estimating the parameter in a conditional Poisson distribution.
    *Biometrics* 16(2), 203-211 (the zero-truncated Poisson and its mean).
    """
    from scipy import optimize
    from scipy.stats import poisson

    means = np.atleast_1d(np.asarray(queries_per_person, dtype=float))
    floors = np.full(means.shape, np.nan)
    for i, mean in enumerate(means):
        if not np.isfinite(mean) or mean < 1.0:
            continue
        if mean - 1.0 < 1e-9:
            floors[i] = 0.0
            continue
        rate = optimize.brentq(lambda lam: lam / -np.expm1(-lam) - mean, 1e-9, mean + 1.0)
        k = np.arange(1, int(poisson.isf(1e-12, rate)) + 2)
        p = poisson.pmf(k, rate) / -np.expm1(-rate)
        # NOTE: Gini = E|X − X'| / (2 E X) = Σ_k F(k)(1 − F(k)) / E X for integer X.
        cdf = np.cumsum(p)
        floors[i] = float(np.sum(cdf * (1.0 - cdf)) / mean)
    return floors


def _linked(queries: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    return queries.lazy().filter(
        pl.col("is_linked") & pl.col("origin").is_not_null() & pl.col("person_key").is_not_null()
    )


PERSON_BUCKET_ROWS = 20_000_000
"""Query rows per bucket of persons (``person_key % buckets``, counted one at a time; see
:func:`count_person_buckets`). Counts per person and ProCo windows never cross persons, so the
buckets are independent and the output is the same for any number of them. Each bucket scans
every month: at 50M person queries (about 83M query rows) five buckets took 54.5 s and peaked
at 1.97 GB for the repeat checks and ProCo counts together, nine 65.4 s and 1.34 GB (the same
tables; each bucket read once for both, `count_repeat_histograms`, five took 30–33 s and
2.5 GB); below 20M rows one pass suffices (at 5M person queries, 8.3M rows, 9.9 → 7.2 s
against eight buckets). `count_repeat_histograms` groups a bucket's text as categorical codes
(five buckets 28.9 → 18.7 s, peak 2.5 → 1.7 GB)."""


def count_person_buckets(queries: pl.DataFrame | pl.LazyFrame) -> int:
    """Buckets of persons for about `PERSON_BUCKET_ROWS` query rows each (at least one)."""
    rows = queries.lazy().select(pl.len()).collect().item()
    return max(1, -(-rows // PERSON_BUCKET_ROWS))


def count_persons_by_query_count(
    queries: pl.DataFrame | pl.LazyFrame, *, buckets: int | None = None, all_teams: str = "ALL"
) -> pl.DataFrame:
    """Return one row per query_type × team_code (each team and ``ALL``) × origin × query_count:
    ``person_count``, the persons with exactly that many linked queries in the group.

    Over linked queries (``is_linked``, known origin and person_key), one bucket of persons at a
    time (`buckets`; None: :func:`count_person_buckets`). A person counts in each team with their
    queries there, and once in ``ALL``.
    """
    # NOTE: one pass grouping 70M linked queries by person peaked at 6.5 GB at 50M person
    # queries; a bucket at a time reduced to a histogram at once, 1.0 GB (docs/performance.md).
    buckets = count_person_buckets(queries) if buckets is None else buckets
    linked = _linked(queries).select(*_KEYS, "person_key")
    return _merge_person_histograms([
        _person_histogram(linked.filter(pl.col("person_key") % buckets == bucket), all_teams)
        .collect()
        for bucket in range(buckets)
    ])


def _person_histogram(linked: pl.LazyFrame, all_teams: str) -> pl.LazyFrame:
    """Persons per query_type × team_code (and ALL) × origin × query_count of linked rows."""
    per_team = linked.group_by(*_KEYS, "person_key").agg(query_count=pl.len())
    schema = per_team.collect_schema()
    # NOTE: a person's queries over the whole area are the sum of their queries per team: the
    # rows are grouped by person once, and polars computes `per_team` once for both uses (the
    # repeat-check table at 50M 35.1 / 36.6 → 32.6 / 30.5 s, the same table).
    whole_area = (
        per_team.group_by("query_type", "origin", "person_key")
        .agg(pl.col("query_count").sum())
        .with_columns(team_code=pl.lit(all_teams, schema["team_code"]))
        .select(schema.names())
    )
    return (pl.concat([per_team, whole_area])
            .group_by(*_KEYS, "query_count")
            .agg(person_count=pl.len().cast(pl.Int64)))


def _merge_person_histograms(histograms: list[pl.DataFrame]) -> pl.DataFrame:
    return (
        pl.concat(histograms)
        .with_columns(pl.col(_KEYS).cast(pl.String))
        .group_by(*_KEYS, "query_count")
        .agg(pl.col("person_count").sum())
        .with_columns(pl.col("query_count").cast(pl.Int64))
        .sort(*_KEYS, "query_count")
    )


def compute_repeat_checks(
    queries: pl.DataFrame | pl.LazyFrame,
    *,
    reference: str = "NL",
    buckets: int | None = None,
    origin_order: Sequence[str] = (),
    all_teams: str = "ALL",
) -> pl.DataFrame:
    """Return one row per query_type × team_code (each team and ``ALL``) × origin: repeat queries.

    Over linked queries (``is_linked``, known origin and person_key). Per row:
    ``person_count`` distinct persons queried; ``query_count`` their queries;
    ``queries_per_person`` the mean; ``queries_per_person_ratio`` that mean divided by the
    reference origin's in the same query_type and team (null on the reference rows or when
    the reference is absent); ``share_queried_2plus`` / ``share_queried_5plus`` the share
    of those persons queried at least 2 / 5 times; ``gini`` the Gini coefficient of queries
    over those persons (:func:`gini`) and ``gini_poisson_floor`` what it would be with the
    same queries per person and no concentration at all (:func:`poisson_gini_floor`).

    A person queried in several teams counts in each of those teams with their queries in
    that team only; in ``ALL`` they count once, with all their queries. Hence team
    person counts do not add up to ``ALL``. Counts cover the whole period of the input.

    Parameters
    ----------
    queries : polars.DataFrame or polars.LazyFrame
        Core query table: ``query_type``, ``team_code``, ``person_key``, ``is_linked``,
        ``origin``.
    reference : str, default "NL"
        Reference origin of ``queries_per_person_ratio``.
    buckets : int or None
        Buckets of persons counted one at a time (:func:`count_persons_by_query_count`; None:
        :func:`count_person_buckets`).
    origin_order, all_teams
        Order of the origins and ``team_code`` of the whole-area rows
        (:func:`assets.stats.outcome.sort_output_rows`).

    Returns
    -------
    polars.DataFrame
        Columns of :data:`REPEAT_SCHEMA`, sorted by query_type, team_code (``ALL`` last),
        origin (``origin_order``).
    """
    return _repeat_checks_from_histogram(
        count_persons_by_query_count(queries, buckets=buckets, all_teams=all_teams),
        reference=reference, origin_order=origin_order, all_teams=all_teams)


def _repeat_checks_from_histogram(histogram: pl.DataFrame, *, reference: str,
                                  origin_order: Sequence[str], all_teams: str) -> pl.DataFrame:
    """`compute_repeat_checks` from :func:`count_persons_by_query_count`'s histogram."""
    persons, queries_per = pl.col("person_count"), pl.col("query_count")
    # NOTE: the Gini numerator sum_i i x_(i) over the sorted per-person counts, block by block:
    # a block of c persons with count v after C persons adds v (c C + c (c + 1) / 2). Integer
    # sums, so exact and independent of row order.
    histogram = histogram.with_columns(
        _ranked=queries_per * (persons * (persons.cum_sum() - persons).over(_KEYS)
                               + persons * (persons + 1) // 2)
    )
    person_total = persons.sum()
    query_total = (persons * queries_per).sum()
    stats = histogram.group_by(_KEYS).agg(
        person_count=person_total,
        query_count=query_total,
        queries_per_person=query_total / person_total,
        share_queried_2plus=persons.filter(queries_per >= 2).sum() / person_total,
        share_queried_5plus=persons.filter(queries_per >= 5).sum() / person_total,
        gini=2.0 * pl.col("_ranked").sum().cast(pl.Float64)
        / (person_total * query_total).cast(pl.Float64)
        - (person_total + 1).cast(pl.Float64) / person_total,
    )
    ref = stats.filter(pl.col("origin") == reference).select(
        "query_type", "team_code", pl.col("queries_per_person").alias("_ref_qpp")
    )
    result = stats.join(ref, on=["query_type", "team_code"], how="left").with_columns(
        pl.when(pl.col("origin") != reference)
        .then(pl.col("queries_per_person") / pl.col("_ref_qpp"))
        .alias("queries_per_person_ratio")
    )
    result = result.with_columns(pl.Series(
        "gini_poisson_floor", poisson_gini_floor(result["queries_per_person"].to_numpy())))
    return sort_output_rows(result.select(REPEAT_SCHEMA.names()).cast(dict(REPEAT_SCHEMA)),
                            origin_order=origin_order, all_teams=all_teams)


def add_proco_count(queries: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame | pl.LazyFrame:
    """Add ``proco_count``: earlier queries of the same person and query type in the preceding 365 days.

    For a query at instant t of person p (``person_key``) and type q, ``proco_count`` is the
    number of queries of p and q with ``t - 365 days <= queried_at < t``, in any team. Queries
    at exactly the same instant do not count each other (strictly earlier only), so the
    count does not depend on the arbitrary order of ``query_id``. Null when ``person_key``
    is null (the person cannot be followed). All rows are kept, in their input order; the
    result is lazy when the input is.

    Notes
    -----
    The window is 365 days of elapsed time, not 12 calendar months (which differ in length
    and make "the same day last year" ambiguous at month ends and in leap years). Queries
    before the start of the data are unknown, so counts early in the data are
    left-truncated: compare groups over the same period, or leave out the first year.
    Computed with a polars ``rolling_sum_by`` over each person (no Python loop).
    """
    ones = pl.col("queried_at").is_not_null().cast(pl.UInt32)
    # NOTE: closed="left" makes the window [t - 365d, t): the query itself and queries at
    # the same instant are excluded.
    earlier = ones.rolling_sum_by("queried_at", window_size=PROCO_WINDOW, closed="left").over(
        "query_type", "person_key"
    )
    return queries.with_columns(
        pl.when(pl.col("person_key").is_not_null() & pl.col("queried_at").is_not_null())
        .then(earlier.cast(pl.Int64))
        .alias("proco_count")
    )


def count_proco_histogram(
    queries: pl.DataFrame | pl.LazyFrame, *, buckets: int | None = None
) -> pl.DataFrame:
    """Return one row per query_type × team_code × origin × proco_count: ``query_count``.

    Over linked queries (``is_linked``, a known origin and ``person_key``) whose ProCo count
    (:func:`add_proco_count`) is known, computed one bucket of persons at a time (`buckets`;
    None: :func:`count_person_buckets`).
    """
    buckets = count_person_buckets(queries) if buckets is None else buckets
    rows = _person_rows(queries)
    # NOTE: one pass over 72M linked queries with the window and two quantiles peaked at
    # 13.5 GB at 50M person queries; buckets of persons reduced to a histogram at once keep it
    # at 1.5 GB, with identical output (docs/performance.md).
    return _merge_proco_histograms([
        _proco_histogram(rows.filter(pl.col("person_key") % buckets == bucket)).collect()
        for bucket in range(buckets)
    ])


def count_repeat_histograms(
    queries: pl.DataFrame | pl.LazyFrame, *, buckets: int | None = None, all_teams: str = "ALL"
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """:func:`count_persons_by_query_count` and :func:`count_proco_histogram` of the same
    queries, each bucket of persons read once for both (the same tables as the two apart)."""
    buckets = count_person_buckets(queries) if buckets is None else buckets
    # NOTE: the text as categorical codes, grouped on the codes and turned back into text once
    # merged: at 50M person queries (five buckets) 28.9 → 18.7 s and a peak of 2.51 → 1.67 GB,
    # the same tables. Holding all rows in memory once (2.1 GB) and cutting the buckets from
    # them was 17.3 s, but peaked at 3.63 GB and grows with the months of history; a bucket
    # read from the files stays about 20M rows.
    rows = _person_rows(queries).with_columns(pl.col(pl.String).cast(pl.Categorical))
    persons, proco = [], []
    for bucket in range(buckets):
        # NOTE: both histograms from the bucket's rows side by side: at 50M person queries
        # (five buckets) the repeat-check table 40.5 / 41.4 → 32.5 / 34.9 s, peak 2.0 → 2.5 GB
        # (docs/performance.md).
        part = rows.filter(pl.col("person_key") % buckets == bucket).collect().lazy()
        person_histogram, proco_histogram = pl.collect_all([
            _person_histogram(_linked(part).select(*_KEYS, "person_key"), all_teams),
            _proco_histogram(part),
        ])
        persons.append(person_histogram)
        proco.append(proco_histogram)
        # NOTE: freed before the next bucket is read, so that one bucket is held at a time.
        del part
    return _merge_person_histograms(persons), _merge_proco_histograms(proco)


def _person_rows(queries: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    # NOTE: every query of a person counts towards a later query's ProCo count, linked or not,
    # so the rows are all queries with a person and the linked filter comes after the count.
    return queries.lazy().filter(pl.col("person_key").is_not_null()).select(
        *_KEYS, "person_key", "queried_at", "is_linked")


def _proco_histogram(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Linked queries per query_type × team_code × origin × proco_count of `_person_rows`."""
    return (_linked(add_proco_count(rows))
            .filter(pl.col("proco_count").is_not_null())
            .group_by(*_KEYS, "proco_count")
            .agg(pl.len().cast(pl.Int64).alias("query_count")))


def _merge_proco_histograms(histograms: list[pl.DataFrame]) -> pl.DataFrame:
    return (
        pl.concat(histograms)
        .with_columns(pl.col(_KEYS).cast(pl.String))
        .group_by(*_KEYS, "proco_count")
        .agg(pl.col("query_count").sum())
        .sort(*_KEYS, "proco_count")
    )


def _quantile_from_histogram(q: float) -> pl.Expr:
    # NOTE: numpy's and polars' "linear" rule: with h = (n - 1) q, the quantile is
    # x[floor h] + (h - floor h) (x[ceil h] - x[floor h]), where the order statistic x[i]
    # (0-based) is the smallest value whose cumulative count exceeds i.
    h = ((pl.col("_n") - 1) * q).first()
    low, high = h.floor(), h.ceil()
    x_low = pl.col("proco_count").filter(pl.col("_cum") > low).first()
    x_high = pl.col("proco_count").filter(pl.col("_cum") > high).first()
    return (x_low + (h - low) * (x_high - x_low)).cast(pl.Float64)


def summarise_proco_counts(
    queries: pl.DataFrame | pl.LazyFrame,
    *,
    buckets: int | None = None,
    origin_order: Sequence[str] = (),
    all_teams: str = "ALL",
) -> pl.DataFrame:
    """Return one row per query_type × team_code (each team and ``ALL``) × origin: ProCo counts.

    Over linked queries with a ProCo count (:func:`add_proco_count`, computed here). Columns
    are prefixed ``proco_``: ``proco_query_count`` queries summarised; ``proco_mean``;
    ``proco_median`` and ``proco_p90`` (linear interpolation between order statistics, as R's
    default and numpy's); ``proco_share_1plus`` / ``proco_share_5plus`` the share of queries
    whose person had been queried at least 1 / 5 times in the preceding 365 days. A query's
    ProCo count includes earlier queries in other teams; the team split is by where the
    counted query happened. Exact, from the histogram of :func:`count_proco_histogram`.
    ``origin_order`` and ``all_teams`` as in :func:`compute_repeat_checks`.
    """
    return _proco_summary_from_histogram(count_proco_histogram(queries, buckets=buckets),
                                         origin_order=origin_order, all_teams=all_teams)


def _proco_summary_from_histogram(per_team: pl.DataFrame, *, origin_order: Sequence[str],
                                  all_teams: str) -> pl.DataFrame:
    """`summarise_proco_counts` from :func:`count_proco_histogram`'s histogram."""
    whole_area = (
        per_team.group_by("query_type", "origin", "proco_count")
        .agg(pl.col("query_count").sum())
        .with_columns(pl.lit(all_teams).alias("team_code"))
        .select(per_team.columns)
    )
    histogram = (
        pl.concat([per_team, whole_area])
        .sort(*_KEYS, "proco_count")
        .with_columns(
            _cum=pl.col("query_count").cum_sum().over(_KEYS),
            _n=pl.col("query_count").sum().over(_KEYS),
        )
    )
    n = pl.col("query_count").sum()
    result = histogram.group_by(_KEYS).agg(
        proco_query_count=n,
        # NOTE: an integer sum divided once: exact and independent of row order.
        proco_mean=(pl.col("query_count") * pl.col("proco_count")).sum() / n,
        proco_median=_quantile_from_histogram(0.5),
        proco_p90=_quantile_from_histogram(0.9),
        proco_share_1plus=pl.col("query_count").filter(pl.col("proco_count") >= 1).sum() / n,
        proco_share_5plus=pl.col("query_count").filter(pl.col("proco_count") >= 5).sum() / n,
    )
    return sort_output_rows(result.select(PROCO_SCHEMA.names()).cast(dict(PROCO_SCHEMA)),
                            origin_order=origin_order, all_teams=all_teams)


def compute_repeat_tables(
    queries: pl.DataFrame | pl.LazyFrame,
    *,
    reference: str = "NL",
    buckets: int | None = None,
    origin_order: Sequence[str] = (),
    all_teams: str = "ALL",
) -> pl.DataFrame:
    """One row per query_type × team_code (each team and ``ALL``) × origin: the columns of
    :func:`compute_repeat_checks` joined with those of :func:`summarise_proco_counts` (null
    where a group has no ProCo count), each bucket of persons read once for both
    (:func:`count_repeat_histograms`). Sorted by query_type, team_code, origin."""
    persons, proco = count_repeat_histograms(queries, buckets=buckets, all_teams=all_teams)
    repeat = _repeat_checks_from_histogram(persons, reference=reference,
                                           origin_order=origin_order, all_teams=all_teams)
    summary = _proco_summary_from_histogram(proco, origin_order=origin_order,
                                            all_teams=all_teams)
    return repeat.join(summary, on=list(_KEYS), how="left").sort(_KEYS)
