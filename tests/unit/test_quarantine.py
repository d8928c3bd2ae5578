"""Row-level quarantine: one stable reason per bad row, counts in = counts out."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from assets.quarantine import QUARANTINE_REASONS, split_queries
from assets.schema import month_bounds_utc
from assets.schema import PERSON_QUERIES, PLATE_QUERIES

PSEUDO = "ab" * 32
TEAMS = ["T1", "T2"]
SOURCE = "2025-03.csv"


def row(**overrides) -> dict:
    base = {
        "query_id": "q1", "queried_at": datetime(2025, 3, 10, 12, tzinfo=UTC), "team_code": "T1",
        "officer_pseudonym": PSEUDO, "subject_pseudonym": PSEUDO, "query_reason": "verkeer",
        "buurt_code": "BU0363AA01", "hit": None,
    }
    return {**base, **overrides}


def frame(rows: list[dict], schema=PERSON_QUERIES) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=schema)


def reasons(rows, query_type="person", earlier=(), schema=PERSON_QUERIES) -> list:
    split = split_queries(frame(rows, schema), query_type=query_type, month="2025-03",
                          team_codes=TEAMS, source_file=SOURCE, earlier_ids=earlier)
    return split.quarantine["reason"].to_list()


def test_month_bounds_are_local_midnights():
    start, end = month_bounds_utc("2025-03")
    assert start == datetime(2025, 2, 28, 23, tzinfo=UTC)  # CET, UTC+1
    assert end == datetime(2025, 3, 31, 22, tzinfo=UTC)  # CEST from 30 March, UTC+2


def test_each_rule_gives_its_reason():
    cases = {
        "null_query_id": row(query_id=None),
        "null_queried_at": row(query_id="b", queried_at=None),
        "outside_month": row(query_id="c", queried_at=datetime(2025, 2, 28, 22, 59, tzinfo=UTC)),
        "null_team_code": row(query_id="d", team_code=None),
        "unknown_team": row(query_id="e", team_code="T9"),
        "null_officer_pseudonym": row(query_id="f", officer_pseudonym=None),
        "bad_pseudonym": row(query_id="g", subject_pseudonym="AB" * 32),
        "bad_query_reason": row(query_id="h", query_reason="fietsen"),
        "bad_buurt_code": row(query_id="i", buurt_code="0363AA01"),
    }
    assert reasons(list(cases.values())) == list(cases)


def test_local_midnight_belongs_to_the_month():
    inside = row(queried_at=datetime(2025, 2, 28, 23, 0, tzinfo=UTC))  # 1 March 00:00 CET
    assert reasons([inside]) == []


def test_duplicates_within_and_across_months():
    rows = [row(query_id="a"), row(query_id="a"), row(query_id="z")]
    assert reasons(rows, earlier=[pl.Series(["z"])]) == ["duplicate_query_id", "duplicate_query_id"]
    # ids of earlier months arrive one month at a time; a reuse in any of them counts
    assert reasons(rows, earlier=[pl.Series(["x"]), pl.Series(["z", None])]) == [
        "duplicate_query_id", "duplicate_query_id"]


def test_plate_rules():
    plate = {k: v for k, v in row().items() if k != "subject_pseudonym"}
    rows = [{**plate, "plate_pseudonym": None, "holder_pseudonym": None},
            {**plate, "query_id": "p2", "plate_pseudonym": PSEUDO, "holder_pseudonym": None}]
    assert reasons(rows, "plate", schema=PLATE_QUERIES) == ["null_plate_pseudonym"]


def test_first_broken_rule_wins():
    assert reasons([row(query_id=None, team_code="T9", query_reason="x")]) == ["null_query_id"]


def test_quarantine_drops_pseudonyms():
    split = split_queries(frame([row(team_code="T9")]), query_type="person", month="2025-03",
                          team_codes=TEAMS, source_file=SOURCE)
    assert not [c for c in split.quarantine.columns if "pseudonym" in c]
    assert split.quarantine["source_file"].to_list() == [SOURCE]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.fixed_dictionaries({
    "query_id": st.sampled_from(["a", "b", "c", None]),
    "team_code": st.sampled_from(["T1", "T2", "T9", None]),
    "query_reason": st.sampled_from([*["verkeer", "overig"], "bogus", None]),
    "day": st.integers(min_value=-2, max_value=33),
    "subject_pseudonym": st.sampled_from([PSEUDO, "x" * 64, None]),
}), max_size=30))
def test_counts_in_equal_counts_out_and_reasons_are_known(rows):
    raw = frame([row(query_id=r["query_id"], team_code=r["team_code"],
                     query_reason=r["query_reason"], subject_pseudonym=r["subject_pseudonym"],
                     queried_at=datetime(2025, 3, 1, 12, tzinfo=UTC)
                     + (datetime(2025, 3, 2, tzinfo=UTC) - datetime(2025, 3, 1, tzinfo=UTC))
                     * r["day"])
                 for r in rows])
    split = split_queries(raw, query_type="person", month="2025-03", team_codes=TEAMS,
                          source_file=SOURCE)
    assert split.valid.height + split.quarantine.height == raw.height
    assert set(split.quarantine["reason"]) <= set(QUARANTINE_REASONS)
    assert split.valid["query_id"].is_unique().all()
    assert split.valid["team_code"].is_in(TEAMS).all()


def test_blank_query_id_counts_as_null():
    assert reasons([row(query_id="  ")]) == ["null_query_id"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=3), max_size=20), st.lists(st.text(max_size=3), max_size=20))
def test_reused_ids_are_found_exactly(ids, earlier):
    from assets.quarantine import find_reused_ids

    found = find_reused_ids(pl.Series(ids, dtype=pl.String), pl.Series(earlier, dtype=pl.String))
    assert found.to_list() == [i in set(earlier) for i in ids]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=3)), max_size=40))
def test_repeated_ids_are_found_exactly(ids):
    from assets.quarantine import find_repeated_ids

    series = pl.Series(ids, dtype=pl.String)
    assert find_repeated_ids(series).to_list() == (~series.is_first_distinct()).to_list()
