"""Repeat checks, Gini and ProCo counts (assets/stats/repeat.py)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assets.schema import ORIGIN_CODES
from assets.stats.outcome import sort_output_rows
from assets.stats.repeat import (
    PROCO_SCHEMA,
    REPEAT_SCHEMA,
    add_proco_count,
    compute_repeat_checks,
    compute_repeat_tables,
    count_person_buckets,
    count_persons_by_query_count,
    count_proco_histogram,
    count_repeat_histograms,
    gini,
    poisson_gini_floor,
    summarise_proco_counts,
)

START = dt.datetime(2025, 1, 1, 12, tzinfo=dt.UTC)


# ---------------------------------------------------------------- Gini


def test_gini_of_equal_values_is_zero() -> None:
    assert gini([3, 3, 3, 3]) == pytest.approx(0.0)


@pytest.mark.parametrize("n", [2, 5, 100])
def test_gini_when_one_takes_all(n: int) -> None:
    assert gini([7] + [0] * (n - 1)) == pytest.approx((n - 1) / n)


@pytest.mark.parametrize("bad", [[1, math.nan], [1, math.inf], [1.5, 2], [None, 2]])
def test_gini_refuses_missing_and_fractional_counts(bad) -> None:
    # Review finding: gini([1, nan]) returned NaN silently and fractions passed.
    with pytest.raises(ValueError, match="non-finite|whole"):
        gini(bad)


@pytest.mark.parametrize("rate", [0.3, 1.0, 2.5])
def test_poisson_gini_floor_is_the_gini_of_identical_propensities(rate) -> None:
    rng = np.random.default_rng(7)
    counts = rng.poisson(rate, 1_000_000)
    counts = counts[counts > 0]
    assert poisson_gini_floor([counts.mean()])[0] == pytest.approx(gini(counts), abs=0.003)


def test_poisson_gini_floor_edges() -> None:
    floors = poisson_gini_floor([1.0, 0.5, math.nan])
    assert floors[0] == 0.0 and math.isnan(floors[1]) and math.isnan(floors[2])


def test_gini_known_value_and_edge_cases() -> None:
    # 1, 2, 3, 4: mean absolute difference 5/4 over 2 * mean 5/2 -> 0.25
    assert gini([4, 1, 3, 2]) == pytest.approx(0.25)
    assert math.isnan(gini([]))
    assert math.isnan(gini([0, 0]))
    with pytest.raises(ValueError):
        gini([1, -1, 3])


@settings(deadline=None)  # no timing asserts: other jobs share the machine
@given(st.lists(st.integers(1, 50), min_size=1, max_size=60))
def test_gini_equals_the_pairwise_definition(values: list[int]) -> None:
    x = np.asarray(values, dtype=float)
    pairwise = np.abs(x[:, None] - x[None, :]).sum() / (2 * x.size**2 * x.mean())
    assert gini(values) == pytest.approx(pairwise, abs=1e-12)
    assert 0.0 <= gini(values) < 1.0


# ---------------------------------------------------------------- repeat checks


def _query_frame(rows: list[tuple]) -> pl.DataFrame:
    """Rows of (query_type, team_code, person_key, origin, days after START)."""
    return pl.DataFrame(
        [
            {
                "query_id": f"q{i:04d}",
                "query_type": query_type,
                "team_code": team,
                "person_key": person,
                "is_linked": origin is not None,
                "origin": origin,
                "queried_at": START + dt.timedelta(days=days),
            }
            for i, (query_type, team, person, origin, days) in enumerate(rows)
        ],
        schema={
            "query_id": pl.String,
            "query_type": pl.String,
            "team_code": pl.String,
            "person_key": pl.UInt64,
            "is_linked": pl.Boolean,
            "origin": pl.String,
            "queried_at": pl.Datetime("us", "UTC"),
        },
    )


def _crafted() -> pl.DataFrame:
    rows = [("person", "T1", 1, "NL", d) for d in range(5)]  # person 1: 5 queries in T1
    rows += [("person", "T2", 1, "NL", 10)]  # ... and 1 in T2
    rows += [("person", "T1", 2, "NL", 0)]  # person 2: once
    rows += [("person", "T1", 3, "MA", 0), ("person", "T1", 3, "MA", 0), ("person", "T1", 3, "MA", 400)]
    rows += [("person", "T1", 4, "MA", 3)]
    rows += [("person", "T1", None, None, 0)]  # not identified: excluded
    rows += [("person", "T1", 9, None, 0)]  # identified, not linked: excluded from tables
    rows += [("plate", "T1", 1, "NL", 2)]  # same person, other query type
    return _query_frame(rows)


def test_repeat_checks_exact_numbers() -> None:
    result = compute_repeat_checks(_crafted(), origin_order=ORIGIN_CODES)
    assert result.schema == REPEAT_SCHEMA
    got = {
        (r["query_type"], r["team_code"], r["origin"]): r for r in result.iter_rows(named=True)
    }
    assert list(got) == [
        ("person", "T1", "NL"),
        ("person", "T1", "MA"),
        ("person", "T2", "NL"),
        ("person", "ALL", "NL"),
        ("person", "ALL", "MA"),
        ("plate", "T1", "NL"),
        ("plate", "ALL", "NL"),
    ]
    t1_nl = got[("person", "T1", "NL")]  # persons 1 (5 queries in T1) and 2 (1)
    assert (t1_nl["person_count"], t1_nl["query_count"]) == (2, 6)
    assert t1_nl["queries_per_person"] == pytest.approx(3.0)
    assert t1_nl["share_queried_2plus"] == pytest.approx(0.5)
    assert t1_nl["share_queried_5plus"] == pytest.approx(0.5)
    assert t1_nl["gini"] == pytest.approx(gini([5, 1]))
    assert t1_nl["queries_per_person_ratio"] is None

    all_nl = got[("person", "ALL", "NL")]  # person 1 counts once with all 6 queries
    assert (all_nl["person_count"], all_nl["query_count"]) == (2, 7)
    assert all_nl["gini"] == pytest.approx(gini([6, 1]))
    assert all_nl["share_queried_5plus"] == pytest.approx(0.5)

    t2_nl = got[("person", "T2", "NL")]  # person 1 in T2: only their T2 query
    assert (t2_nl["person_count"], t2_nl["query_count"], t2_nl["gini"]) == (1, 1, 0.0)

    t1_ma = got[("person", "T1", "MA")]  # persons 3 (3 queries) and 4 (1)
    assert (t1_ma["person_count"], t1_ma["query_count"]) == (2, 4)
    assert t1_ma["queries_per_person"] == pytest.approx(2.0)
    assert t1_ma["queries_per_person_ratio"] == pytest.approx(2.0 / 3.0)
    assert t1_ma["share_queried_5plus"] == pytest.approx(0.0)
    assert got[("person", "ALL", "MA")]["queries_per_person_ratio"] == pytest.approx(2.0 / 3.5)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["person", "plate"]),
            st.sampled_from(["T1", "T2"]),
            st.integers(1, 12),  # person: more persons than buckets
            st.sampled_from(["NL", "MA", None]),
        ),
        min_size=1,
        max_size=80,
    ),
    st.sampled_from([1, 3, 8]),
)
def test_repeat_checks_equal_the_per_person_definition(
    events: list[tuple[str, str, int, str | None]], buckets: int
) -> None:
    queries = _query_frame([(qt, team, person, origin, 0) for qt, team, person, origin in events])
    got = compute_repeat_checks(queries, buckets=buckets)
    per_person: dict[tuple[str, str, str], dict[int, int]] = {}
    for qt, team, person, origin in events:
        if origin is None:
            continue
        for group_team in (team, "ALL"):
            counts = per_person.setdefault((qt, group_team, origin), {})
            counts[person] = counts.get(person, 0) + 1
    assert got.height == len(per_person)
    for row in got.iter_rows(named=True):
        counts = list(per_person[(row["query_type"], row["team_code"], row["origin"])].values())
        assert row["person_count"] == len(counts)
        assert row["query_count"] == sum(counts)
        assert row["share_queried_2plus"] == pytest.approx(np.mean([c >= 2 for c in counts]))
        assert row["share_queried_5plus"] == pytest.approx(np.mean([c >= 5 for c in counts]))
        assert row["gini"] == pytest.approx(gini(counts), abs=1e-12)
    histogram = count_persons_by_query_count(queries, buckets=buckets)
    assert histogram.filter(pl.col("team_code") == "ALL")["person_count"].sum() == len(
        {(qt, origin, person) for qt, _, person, origin in events if origin is not None})


# ---------------------------------------------------------------- ProCo counts


def test_proco_count_exact_numbers() -> None:
    frame = _crafted()
    counted = add_proco_count(frame)
    assert counted["query_id"].to_list() == frame["query_id"].to_list()  # order kept
    by_id = dict(zip(counted["query_id"], counted["proco_count"], strict=True))
    assert [by_id[f"q{i:04d}"] for i in range(5)] == [0, 1, 2, 3, 4]
    assert by_id["q0005"] == 5  # T2 query counts the five earlier T1 queries
    assert by_id["q0006"] == 0
    # two queries of person 3 at the same instant do not count each other;
    # the one 400 days later has nothing in the preceding 365 days
    assert (by_id["q0007"], by_id["q0008"], by_id["q0009"]) == (0, 0, 0)
    assert by_id["q0011"] is None  # no person_key
    assert by_id["q0012"] == 0  # unlinked persons still have a count
    assert by_id["q0013"] == 0  # plate query: person queries do not count


def test_proco_window_is_365_days_inclusive_of_the_start() -> None:
    base = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
    frame = pl.DataFrame(
        {
            "query_type": ["person"] * 3,
            "person_key": [7, 7, 7],
            "queried_at": [
                base,
                base + dt.timedelta(days=365),  # exactly 365 days later: counts the first
                base + dt.timedelta(days=365, microseconds=1),  # a microsecond more: not any more
            ],
        },
        schema_overrides={"person_key": pl.UInt64, "queried_at": pl.Datetime("us", "UTC")},
    )
    assert add_proco_count(frame)["proco_count"].to_list() == [0, 1, 1]
    lazy = add_proco_count(frame.lazy())
    assert isinstance(lazy, pl.LazyFrame)
    assert lazy.collect()["proco_count"].to_list() == [0, 1, 1]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 4), st.sampled_from(["person", "plate"]), st.integers(0, 800)),
        min_size=1,
        max_size=40,
    )
)
def test_proco_count_equals_brute_force(events: list[tuple[int, str, int]]) -> None:
    frame = pl.DataFrame(
        {
            "person_key": [e[0] for e in events],
            "query_type": [e[1] for e in events],
            "queried_at": [START + dt.timedelta(days=e[2]) for e in events],
        },
        schema_overrides={"person_key": pl.UInt64, "queried_at": pl.Datetime("us", "UTC")},
    )
    expected = [
        sum(
            1
            for other in events
            if other[:2] == event[:2] and event[2] - 365 <= other[2] < event[2]
        )
        for event in events
    ]
    assert add_proco_count(frame)["proco_count"].to_list() == expected


def test_summarise_proco_counts_exact_numbers() -> None:
    summary = summarise_proco_counts(_crafted())
    assert summary.schema == PROCO_SCHEMA
    t1_nl = summary.filter(
        (pl.col("query_type") == "person") & (pl.col("team_code") == "T1") & (pl.col("origin") == "NL")
    ).row(0, named=True)
    # counts of T1 NL queries: person 1 -> 0, 1, 2, 3, 4; person 2 -> 0
    assert t1_nl["proco_query_count"] == 6
    assert t1_nl["proco_mean"] == pytest.approx(10 / 6)
    assert t1_nl["proco_median"] == pytest.approx(np.quantile([0, 0, 1, 2, 3, 4], 0.5))
    assert t1_nl["proco_p90"] == pytest.approx(np.quantile([0, 0, 1, 2, 3, 4], 0.9))
    assert t1_nl["proco_share_1plus"] == pytest.approx(4 / 6)
    assert t1_nl["proco_share_5plus"] == pytest.approx(0.0)
    all_nl = summary.filter(
        (pl.col("query_type") == "person") & (pl.col("team_code") == "ALL") & (pl.col("origin") == "NL")
    ).row(0, named=True)
    assert all_nl["proco_query_count"] == 7  # + the T2 query with count 5
    assert all_nl["proco_share_5plus"] == pytest.approx(1 / 7)
    # same keys as the repeat-check table, so the two join one to one
    keys = ["query_type", "team_code", "origin"]
    repeat = compute_repeat_checks(_crafted())
    assert summary.select(keys).equals(repeat.select(keys))


def _summarise_row_by_row(queries: pl.DataFrame) -> pl.DataFrame:
    """The ProCo summary from one ProCo count per query, with polars' own mean and quantiles."""
    counted = add_proco_count(queries).filter(
        pl.col("is_linked") & pl.col("origin").is_not_null() & pl.col("proco_count").is_not_null()
    )
    aggregates = [
        pl.len().cast(pl.Int64).alias("proco_query_count"),
        pl.col("proco_count").mean().alias("proco_mean"),
        pl.col("proco_count").quantile(0.5, interpolation="linear").alias("proco_median"),
        pl.col("proco_count").quantile(0.9, interpolation="linear").alias("proco_p90"),
        (pl.col("proco_count") >= 1).mean().alias("proco_share_1plus"),
        (pl.col("proco_count") >= 5).mean().alias("proco_share_5plus"),
    ]
    per_team = counted.group_by("query_type", "team_code", "origin").agg(aggregates)
    whole_area = counted.group_by("query_type", "origin").agg(aggregates).with_columns(
        team_code=pl.lit("ALL"))
    return sort_output_rows(pl.concat(
        [per_team.select(PROCO_SCHEMA.names()), whole_area.select(PROCO_SCHEMA.names())]))


_TIMED_EVENTS = st.lists(
    st.tuples(
        st.integers(1, 12),  # person: more persons than buckets, so buckets differ in size
        st.sampled_from(["person", "plate"]),
        st.sampled_from(["T1", "T2"]),
        st.sampled_from(["NL", "MA", None]),
        st.integers(0, 60),  # day: many ties and long runs of repeat queries
        st.booleans(),
    ),
    min_size=1,
    max_size=80,
)
"""Queries as (person, query type, team, origin, week, linked)."""


def _timed_query_frame(events: list[tuple[int, str, str, str | None, int, bool]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "person_key": [e[0] for e in events],
            "query_type": [e[1] for e in events],
            "team_code": [e[2] for e in events],
            "origin": [e[3] for e in events],
            "queried_at": [START + dt.timedelta(days=e[4] * 7) for e in events],
            "is_linked": [e[5] for e in events],
        },
        schema_overrides={"person_key": pl.UInt64, "queried_at": pl.Datetime("us", "UTC"),
                          "origin": pl.String},
    )


@settings(max_examples=80, deadline=None)
@given(_TIMED_EVENTS, st.sampled_from([1, 3, 8]))
def test_proco_summary_from_the_histogram_equals_the_row_by_row_summary(
    events: list[tuple[int, str, str, str | None, int, bool]], buckets: int
) -> None:
    queries = _timed_query_frame(events)
    got = summarise_proco_counts(queries, buckets=buckets)
    expected = _summarise_row_by_row(queries)
    assert got.schema == PROCO_SCHEMA
    assert got.select("query_type", "team_code", "origin", "proco_query_count").equals(
        expected.select("query_type", "team_code", "origin", "proco_query_count"))
    for column in ("proco_mean", "proco_median", "proco_p90", "proco_share_1plus",
                   "proco_share_5plus"):
        assert got[column].to_list() == pytest.approx(expected[column].to_list(), rel=1e-12), column
    histogram = count_proco_histogram(queries, buckets=buckets)
    assert histogram["query_count"].sum() == expected.filter(
        pl.col("team_code") != "ALL")["proco_query_count"].sum()


def test_buckets_follow_the_rows_and_leave_the_output_as_it_is(monkeypatch) -> None:
    import assets.stats.repeat as repeat

    queries = _query_frame([("person", "T1", p % 7, "NL" if p % 3 else "MA", p) for p in range(25)])
    assert count_person_buckets(queries) == 1
    monkeypatch.setattr(repeat, "PERSON_BUCKET_ROWS", 10)
    assert count_person_buckets(queries) == 3
    assert compute_repeat_checks(queries).equals(compute_repeat_checks(queries, buckets=1))
    assert summarise_proco_counts(queries).equals(summarise_proco_counts(queries, buckets=1))


@settings(max_examples=60, deadline=None)
@given(_TIMED_EVENTS, st.sampled_from([1, 3, 8]))
def test_both_histograms_from_one_read_of_each_bucket_equal_the_two_apart(
    events: list[tuple[int, str, str, str | None, int, bool]], buckets: int
) -> None:
    queries = _timed_query_frame(events)
    persons, proco = count_repeat_histograms(queries.lazy(), buckets=buckets)
    assert persons.equals(count_persons_by_query_count(queries, buckets=buckets))
    assert proco.equals(count_proco_histogram(queries, buckets=buckets))
    keys = ["query_type", "team_code", "origin"]
    joined = compute_repeat_checks(queries, buckets=buckets).join(
        summarise_proco_counts(queries, buckets=buckets), on=keys, how="left").sort(keys)
    assert compute_repeat_tables(queries, buckets=buckets).equals(joined)
