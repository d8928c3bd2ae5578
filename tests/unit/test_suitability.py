"""The data-suitability table counts every row once and gives the documented verdicts."""

from __future__ import annotations

import sys
import types

import polars as pl
import pytest

from assets.suitability import (
    NO_TEAM,
    SuitabilityThresholds,
    compute_data_suitability,
    count_received_rows,
)

REASONS = ("null_team_code", "unknown_team", "outside_month", "bad_buurt_code")
MONTH = "2025-03"


def _valid(rows: list[tuple]) -> pl.DataFrame:
    """Valid query rows: (query_type, team, officer, person_key, is_linked, buurt, reason, hit)."""
    return pl.DataFrame(
        rows,
        schema={
            "query_type": pl.String,
            "team_code": pl.String,
            "officer_key": pl.UInt64,
            "person_key": pl.UInt64,
            "is_linked": pl.Boolean,
            "buurt_code": pl.String,
            "query_reason": pl.String,
            "hit": pl.Boolean,
        },
        orient="row",
    ).with_columns(month=pl.lit(MONTH))


def _quarantine(rows: list[tuple]) -> pl.DataFrame:
    """Quarantined rows: (query_type, raw team_code, reason)."""
    return pl.DataFrame(
        rows, schema={"query_type": pl.String, "team_code": pl.String, "reason": pl.String}, orient="row"
    ).with_columns(month=pl.lit(MONTH))


def _received(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={"query_type": pl.String, "team_code": pl.String, "rows_received": pl.Int64},
        orient="row",
    ).with_columns(month=pl.lit(MONTH))


def _row(table: pl.DataFrame, query_type: str, team: str) -> dict:
    [row] = table.filter(
        (pl.col("query_type") == query_type) & (pl.col("team_code") == team)
    ).to_dicts()
    return row


@pytest.fixture
def crafted() -> pl.DataFrame:
    # Person queries: team A1 receives 10 rows (1 quarantined), A2 5 rows, 2 rows without team.
    valid = _valid(
        [("person", "A1", 1, 11, True, "BU1", "verkeer", True)] * 6
        + [("person", "A1", 2, 12, False, None, None, None)] * 2  # identified, not linked
        + [("person", "A1", 2, None, False, "BU1", None, None)]  # no person identified
        + [("person", "A2", 3, 13, True, "BU2", "melding", None)] * 5
        # Plate queries: 4 valid, 2 without a natural-person holder.
        + [("plate", "A1", 1, 14, True, "BU1", "verkeer", False)] * 2
        + [("plate", "A1", 4, None, False, "BU1", "verkeer", False)] * 2
    )
    quarantine = _quarantine(
        [
            ("person", "A1", "outside_month"),
            ("person", None, "null_team_code"),
            ("person", None, "null_team_code"),
            ("plate", "Z9", "unknown_team"),
        ]
    )
    received = _received(
        [
            ("person", "A1", 10),
            ("person", "A2", 5),
            ("person", None, 2),
            ("plate", "A1", 4),
            ("plate", "Z9", 1),
        ]
    )
    return compute_data_suitability(received, quarantine, valid.lazy(), reasons=REASONS)


def test_keys_and_order(crafted: pl.DataFrame) -> None:
    assert crafted.select("month", "query_type", "team_code").rows() == [
        (MONTH, "person", "ALL"),
        (MONTH, "person", NO_TEAM),
        (MONTH, "person", "A1"),
        (MONTH, "person", "A2"),
        (MONTH, "plate", "ALL"),
        (MONTH, "plate", "A1"),
        (MONTH, "plate", "Z9"),
    ]
    assert crafted.columns[:9] == [
        "month",
        "query_type",
        "team_code",
        "rows_received",
        "rows_quarantined",
        "rows_quarantined_null_team_code",
        "rows_quarantined_unknown_team",
        "rows_quarantined_outside_month",
        "rows_quarantined_bad_buurt_code",
    ]


def test_every_row_is_accounted_for(crafted: pl.DataFrame) -> None:
    assert (
        crafted["rows_received"] == crafted["rows_quarantined"] + crafted["rows_valid"]
    ).all()
    by_reason = crafted.select(pl.sum_horizontal(pl.col("^rows_quarantined_.*$")))
    assert by_reason.to_series().to_list() == crafted["rows_quarantined"].to_list()


def test_exact_numbers_person_all(crafted: pl.DataFrame) -> None:
    row = _row(crafted, "person", "ALL")
    assert {k: row[k] for k in list(row)[3:12]} == {
        "rows_received": 17,
        "rows_quarantined": 3,
        "rows_quarantined_null_team_code": 2,
        "rows_quarantined_unknown_team": 0,
        "rows_quarantined_outside_month": 1,
        "rows_quarantined_bad_buurt_code": 0,
        "rows_valid": 14,
        "rows_identified": 13,
        "rows_linked": 11,
    }
    assert row["linkage_rate"] == pytest.approx(11 / 14)
    assert row["identified_linkage_rate"] == pytest.approx(11 / 13)
    assert row["quarantined_share"] == pytest.approx(3 / 17)
    assert row["missing_person_share"] == pytest.approx(1 / 14)
    assert row["missing_buurt_code_share"] == pytest.approx(2 / 14)
    assert row["missing_query_reason_share"] == pytest.approx(3 / 14)
    assert row["missing_hit_share"] == pytest.approx(8 / 14)
    assert row["officer_count"] == 3
    assert row["queries_per_officer"] == pytest.approx(14 / 3)
    assert row["verdict"] == "not suitable"
    assert row["verdict_reason"] == (
        "17.6% of rows quarantined (more than 5%); "
        "84.6% of identified persons linked to CBS (less than 90%); "
        "14.3% of queries without a buurt code (more than 10%); "
        "57.1% of queries without a hit field (more than 50%)"
    )


def test_exact_numbers_per_team(crafted: pl.DataFrame) -> None:
    a1 = _row(crafted, "person", "A1")
    assert (a1["rows_received"], a1["rows_quarantined"], a1["rows_valid"], a1["rows_linked"]) == (10, 1, 9, 6)
    assert a1["officer_count"] == 2 and a1["queries_per_officer"] == pytest.approx(4.5)
    none = _row(crafted, "person", NO_TEAM)
    assert (none["rows_received"], none["rows_quarantined_null_team_code"], none["rows_valid"]) == (2, 2, 0)
    assert none["linkage_rate"] is None and none["queries_per_officer"] is None
    assert none["verdict"] == "not suitable"
    assert none["verdict_reason"].startswith("no valid rows; 100.0% of rows quarantined")
    a2 = _row(crafted, "person", "A2")
    assert (a2["verdict"], a2["verdict_reason"]) == (
        "suitable with caveats",
        "100.0% of queries without a hit field (more than 50%)",
    )


def test_plate_holders_missing_by_design_is_not_a_caveat(crafted: pl.DataFrame) -> None:
    a1 = _row(crafted, "plate", "A1")
    assert a1["missing_person_share"] == pytest.approx(0.5)
    assert a1["linkage_rate"] == pytest.approx(0.5)
    assert a1["identified_linkage_rate"] == pytest.approx(1.0)
    assert (a1["verdict"], a1["verdict_reason"]) == ("suitable", "all thresholds met")
    unknown = _row(crafted, "plate", "Z9")
    assert (unknown["rows_received"], unknown["rows_quarantined_unknown_team"]) == (1, 1)


def test_person_queries_without_person_are_a_caveat() -> None:
    valid = _valid(
        [("person", "A1", 1, 11, True, "BU1", "verkeer", True)] * 8
        + [("person", "A1", 1, None, False, "BU1", "verkeer", True)] * 2
    )
    table = compute_data_suitability(
        _received([("person", "A1", 10)]), _quarantine([]), valid, reasons=REASONS
    )
    row = _row(table, "person", "A1")
    assert (row["verdict"], row["verdict_reason"]) == (
        "suitable with caveats",
        "20.0% of person queries without an identified person (more than 10%)",
    )


def test_thresholds_are_boundaries() -> None:
    # 2 of 100 quarantined: above 1% (caveat), not above 5%.
    valid = _valid([("person", "A1", 1, 11, True, "BU1", "verkeer", True)] * 98)
    quarantine = _quarantine([("person", "A1", "bad_buurt_code")] * 2)
    received = _received([("person", "A1", 100)])
    row = _row(compute_data_suitability(received, quarantine, valid, reasons=REASONS), "person", "A1")
    assert (row["verdict"], row["verdict_reason"]) == (
        "suitable with caveats",
        "2.0% of rows quarantined (more than 1%)",
    )
    lenient = SuitabilityThresholds(max_quarantined_share_suitable=0.02)
    row = _row(
        compute_data_suitability(received, quarantine, valid, reasons=REASONS, thresholds=lenient),
        "person",
        "A1",
    )
    assert row["verdict"] == "suitable"


def test_teams_without_rows_get_a_row() -> None:
    valid = _valid([("person", "A1", 1, 11, True, "BU1", "verkeer", True)])
    table = compute_data_suitability(
        _received([("person", "A1", 1)]), _quarantine([]), valid, reasons=REASONS, teams=["A1", "B7"]
    )
    row = _row(table, "person", "B7")
    assert (row["rows_received"], row["rows_valid"], row["verdict"]) == (0, 0, "not suitable")
    assert table.height == 3


def test_lost_rows_raise_naming_the_cell() -> None:
    valid = _valid([("person", "A1", 1, 11, True, "BU1", "verkeer", True)] * 9)
    with pytest.raises(ValueError, match=r"2025-03 person team A1: received 10 != quarantined 0 \+ valid 9"):
        compute_data_suitability(_received([("person", "A1", 10)]), _quarantine([]), valid, reasons=REASONS)


def test_invented_rows_raise() -> None:
    valid = _valid([("plate", "A1", 1, 11, True, "BU1", "verkeer", True)])
    with pytest.raises(ValueError, match="plate team A1: received 0"):
        compute_data_suitability(_received([]), _quarantine([]), valid, reasons=REASONS)


def test_unknown_reason_raises() -> None:
    with pytest.raises(ValueError, match="made_up"):
        compute_data_suitability(
            _received([("person", "A1", 1)]),
            _quarantine([("person", "A1", "made_up")]),
            _valid([]),
            reasons=REASONS,
        )


def test_default_reasons_come_from_the_quarantine_module(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("assets.quarantine")
    fake.QUARANTINE_REASONS = ("outside_month", "unknown_team")
    monkeypatch.setitem(sys.modules, "assets.quarantine", fake)
    table = compute_data_suitability(
        _received([("person", "A1", 1)]), _quarantine([("person", "A1", "outside_month")]), _valid([])
    )
    assert [c for c in table.columns if c.startswith("rows_quarantined_")] == [
        "rows_quarantined_outside_month",
        "rows_quarantined_unknown_team",
    ]


def test_count_received_rows() -> None:
    raw = pl.DataFrame({"team_code": ["A1", None, "A1", "ZZ"]})
    assert count_received_rows({MONTH: raw}, query_type="plate").rows() == [
        (MONTH, "plate", NO_TEAM, 1),
        (MONTH, "plate", "A1", 2),
        (MONTH, "plate", "ZZ", 1),
    ]
    # NOTE: months in any order, lazy or not, come out sorted by month and team.
    two_months = {"2025-04": pl.LazyFrame({"team_code": ["A1", "B2", "A1", "A1"]}),
                  MONTH: pl.DataFrame({"team_code": ["A1"]})}
    assert count_received_rows(two_months, query_type="person").rows() == [
        (MONTH, "person", "A1", 1),
        ("2025-04", "person", "A1", 3),
        ("2025-04", "person", "B2", 1),
    ]
    none = count_received_rows({}, query_type="person")
    assert none.is_empty() and none.columns == ["month", "query_type", "team_code",
                                                "rows_received"]
