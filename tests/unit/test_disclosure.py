"""Disclosure control (assets/disclosure.py, METHODS.md §9) on crafted tables and random ones."""

from __future__ import annotations

import datetime as dt
import itertools

import hypothesis.strategies as st
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings

from assets.disclosure import (
    TEAM_DISPROPORTIONALITY_SPEC,
    DisclosureSpec,
    Margin,
    apply_disclosure_control,
    check_disclosure,
)

TEAM_SPEC = DisclosureSpec(
    key_columns=("team_code", "origin"),
    person_count="person_count",
    event_counts=("query_count",),
    estimate_columns=("rate_ratio", "rate_ratio_ci_low", "rate_ratio_ci_high"),
    margins=(("team_code", "ALL"),),
)
TWO_MARGIN_SPEC = DisclosureSpec(
    key_columns=("team_code", "origin"),
    person_count="person_count",
    event_counts=("query_count",),
    estimate_columns=("rate_ratio",),
    margins=(Margin("team_code", "ALL"), Margin("origin", "ALL")),
)


def _team_table(cells: dict[tuple[str, str], int]) -> pl.DataFrame:
    """Team × origin cells with query_count = value, person_count = value, and ALL totals."""
    rows = dict(cells)
    for origin in sorted({o for _, o in cells}):
        rows[("ALL", origin)] = sum(v for (t, o), v in cells.items() if o == origin)
    return pl.DataFrame(
        {
            "team_code": [t for t, _ in rows],
            "origin": [o for _, o in rows],
            "query_count": list(rows.values()),
            "person_count": list(rows.values()),
            "rate_ratio": [1.5] * len(rows),
            "rate_ratio_ci_low": [1.1] * len(rows),
            "rate_ratio_ci_high": [2.0] * len(rows),
        }
    )


def _grid_table(values: dict[tuple[str, str], int]) -> pl.DataFrame:
    """A two-way team × origin table with ALL totals on both dimensions and the grand total."""
    teams = sorted({t for t, _ in values})
    origins = sorted({o for _, o in values})
    rows = dict(values)
    for origin in origins:
        rows[("ALL", origin)] = sum(values[(t, origin)] for t in teams)
    for team in [*teams, "ALL"]:
        rows[(team, "ALL")] = sum(rows[(team, o)] for o in origins)
    return pl.DataFrame(
        {
            "team_code": [t for t, _ in rows],
            "origin": [o for _, o in rows],
            "query_count": list(rows.values()),
            "person_count": list(rows.values()),
            "rate_ratio": [1.0] * len(rows),
        }
    )


def _suppressed_keys(frame: pl.DataFrame) -> set[tuple[str, str]]:
    return set(frame.filter("is_suppressed").select("team_code", "origin").rows())


def _naive(frame: pl.DataFrame, spec: DisclosureSpec, threshold: int = 10) -> pl.DataFrame:
    """Primary suppression only, done by hand: what a table without secondary suppression is."""
    small = pl.col(spec.person_count) < threshold
    flagged = frame.with_columns(
        is_suppressed=small, suppression_reason=pl.when(small).then(pl.lit("primary"))
    )
    hidden = pl.col("is_suppressed")
    return flagged.with_columns(
        [pl.when(hidden).then(None).otherwise(pl.col(c)).alias(c) for c in spec.emptied_columns]
    )


def test_single_small_cell_is_suppressed_and_emptied() -> None:
    spec = DisclosureSpec(
        key_columns=("origin",),
        person_count="person_count",
        event_counts=("query_count",),
        estimate_columns=("rate_ratio", "p_value"),
        passthrough_columns=("origin_label",),
    )
    frame = pl.DataFrame(
        {
            "origin": ["NL", "MA", "TR"],
            "origin_label": ["Nederland", "Marokko", "Turkije"],
            "query_count": [500, 12, 40],
            "person_count": [300, 7, 25],
            "rate_ratio": [1.0, 2.5, 1.4],
            "p_value": [1.0, 0.01, 0.2],
        }
    )
    out = apply_disclosure_control(frame, spec)
    assert out.get_column("origin").to_list() == ["MA", "NL", "TR"]  # sorted by key
    hidden = out.filter("is_suppressed")
    assert hidden.get_column("origin").to_list() == ["MA"]
    assert hidden.get_column("suppression_reason").to_list() == ["primary"]
    assert hidden.select("query_count", "person_count", "rate_ratio", "p_value").null_count().row(
        0
    ) == (1, 1, 1, 1)
    assert hidden.get_column("origin_label").to_list() == ["Marokko"]  # pass-through kept
    shown = out.filter(~pl.col("is_suppressed"))
    assert shown.get_column("suppression_reason").null_count() == 2
    assert shown.get_column("query_count").to_list() == [500, 40]
    assert check_disclosure(out, spec) == []
    assert check_disclosure(_naive(frame, spec), spec) == []  # no margins: primary is enough


def test_small_cell_recoverable_from_the_all_team_total_gets_a_partner() -> None:
    frame = _team_table({("A", "MA"): 6, ("B", "MA"): 80, ("A", "NL"): 200, ("B", "NL"): 300})
    naive = _naive(frame, TEAM_SPEC)
    violations = check_disclosure(naive, TEAM_SPEC)
    assert any("exactly one suppressed cell" in v for v in violations)

    out = apply_disclosure_control(frame, TEAM_SPEC)
    assert _suppressed_keys(out) == {("A", "MA"), ("B", "MA")}
    reasons = dict(
        zip(out.select("team_code", "origin").rows(), out.get_column("suppression_reason"))
    )
    assert reasons[("A", "MA")] == "primary"
    assert reasons[("B", "MA")] == "secondary"
    # The total stays published: two unknowns, one equation.
    assert out.filter(team_code="ALL", origin="MA").get_column("query_count").item() == 86
    assert check_disclosure(out, TEAM_SPEC) == []


def test_a_hidden_total_over_published_members_is_a_violation() -> None:
    frame = _team_table({("A", "MA"): 30, ("B", "MA"): 40})
    hidden_total = frame.with_columns(
        is_suppressed=pl.col("team_code") == "ALL", suppression_reason=pl.lit(None, pl.String)
    ).with_columns(
        [
            pl.when(pl.col("is_suppressed")).then(None).otherwise(pl.col(c)).alias(c)
            for c in TEAM_SPEC.emptied_columns
        ]
    )
    assert check_disclosure(hidden_total, TEAM_SPEC)
    out = apply_disclosure_control(hidden_total, TEAM_SPEC)
    assert len(_suppressed_keys(out)) == 2
    assert check_disclosure(out, TEAM_SPEC) == []


def test_a_single_member_under_its_total_hides_the_total() -> None:
    frame = _team_table({("A", "MA"): 4})
    out = apply_disclosure_control(frame, TEAM_SPEC)
    assert _suppressed_keys(out) == {("A", "MA"), ("ALL", "MA")}
    assert check_disclosure(out, TEAM_SPEC) == []


def test_secondary_suppression_iterates_over_two_margins() -> None:
    # A-X is small. Hiding B-X (smallest partner for origin X) leaves B alone in team B's row,
    # which pulls in B-Y, and A's row pulls in A-Y: the classic 2×2 rectangle.
    values = {
        ("A", "X"): 3, ("A", "Y"): 13, ("A", "Z"): 90,
        ("B", "X"): 12, ("B", "Y"): 14, ("B", "Z"): 95,
        ("C", "X"): 50, ("C", "Y"): 60, ("C", "Z"): 70,
    }  # fmt: skip
    frame = _grid_table(values)
    out = apply_disclosure_control(frame, TWO_MARGIN_SPEC)
    assert _suppressed_keys(out) == {("A", "X"), ("B", "X"), ("A", "Y"), ("B", "Y")}
    assert check_disclosure(out, TWO_MARGIN_SPEC) == []
    # One margin alone stops after the first partner, which the second margin exposes.
    one_margin = DisclosureSpec(
        key_columns=TWO_MARGIN_SPEC.key_columns,
        person_count="person_count",
        event_counts=("query_count",),
        estimate_columns=("rate_ratio",),
        margins=(Margin("team_code", "ALL"),),
    )
    partial = apply_disclosure_control(frame, one_margin)
    assert _suppressed_keys(partial) == {("A", "X"), ("B", "X")}
    assert check_disclosure(partial, TWO_MARGIN_SPEC) != []


def test_a_cell_determined_by_combining_margins_is_caught_and_fixed() -> None:
    # Two suppressed rectangles joined by one extra cell (B-Y): every row and column of the
    # table holds 0 or at least 2 suppressed cells, yet B-Y follows exactly from the totals
    # (it lies on no cycle of suppressed cells).
    teams, origins = "ABCD", "WXYZ"
    values = {(t, o): 100 + 7 * i for i, (t, o) in enumerate(itertools.product(teams, origins))}
    frame = _grid_table(values)
    pattern = {("A", "W"), ("A", "X"), ("B", "W"), ("B", "X"), ("C", "Y"), ("C", "Z"),
               ("D", "Y"), ("D", "Z"), ("B", "Y")}  # fmt: skip
    flagged = pl.Series([k in pattern for k in frame.select("team_code", "origin").rows()])
    manual = frame.with_columns(
        is_suppressed=flagged, suppression_reason=pl.lit(None, pl.String)
    ).with_columns(
        [
            pl.when(pl.col("is_suppressed")).then(None).otherwise(pl.col(c)).alias(c)
            for c in TWO_MARGIN_SPEC.emptied_columns
        ]
    )
    violations = check_disclosure(manual, TWO_MARGIN_SPEC)
    assert violations == ["1 suppressed cells can be derived exactly from published totals"]

    out = apply_disclosure_control(frame.with_columns(is_suppressed=flagged), TWO_MARGIN_SPEC)
    assert _suppressed_keys(out) > pattern
    assert check_disclosure(out, TWO_MARGIN_SPEC) == []


def test_rounding_to_five_and_no_published_count_below_ten() -> None:
    spec = DisclosureSpec(
        key_columns=("origin",),
        person_count="person_count",
        event_counts=("query_count",),
        count_columns=("population",),
    )
    frame = pl.DataFrame(
        {
            "origin": list("abcdefghij"),
            "query_count": [10, 11, 12, 13, 14, 15, 17, 18, 9, 1002],
            "person_count": [10, 10, 10, 10, 10, 10, 10, 10, 10, 10],
            "population": [1000, 1002, 1003, 5, 0, 20, 22, 23, 100, 1],
        },
        schema_overrides={"population": pl.UInt32},
    )
    out = apply_disclosure_control(frame, spec, round_to=5)
    assert out.schema["population"] == pl.UInt32
    assert out.schema["query_count"] == pl.Int64
    assert out.get_column("query_count").to_list() == [10, 10, 10, None, 15, 15, 15, 20, None, None]
    assert out.get_column("population").to_list() == [
        1000,
        1000,
        1005,
        None,
        0,
        20,
        20,
        25,
        None,
        None,
    ]
    assert out.get_column("suppression_reason").to_list() == (
        [None] * 3 + ["primary"] + [None] * 4 + ["primary", "primary"]
    )
    for column in ("query_count", "person_count", "population"):
        assert out.filter(pl.col(column).is_between(1, 9)).height == 0
        assert (out.get_column(column).drop_nulls() % 5 == 0).all()
    assert check_disclosure(out, spec) == []
    unrounded = apply_disclosure_control(frame, spec)
    assert unrounded.get_column("query_count").to_list()[:3] == [10, 11, 12]


def test_shares_need_ten_events_in_numerator_and_complement() -> None:
    spec = DisclosureSpec(
        key_columns=("origin",),
        person_count="person_count",
        event_counts=("hit_count",),
        complements=(("hit_count", "query_count"),),
        estimate_columns=("hit_rate",),
    )
    frame = pl.DataFrame(
        {
            "origin": ["NL", "MA", "TR", "SR"],
            "query_count": [200, 100, 100, 100],
            "hit_count": [40, 95, 0, 9],
            "person_count": [150, 80, 70, 60],
        }
    ).with_columns(hit_rate=pl.col("hit_count") / pl.col("query_count"))
    out = apply_disclosure_control(frame, spec)
    # MA: only 5 queries without a hit; TR: zero hits (group disclosure); SR: 9 hits.
    assert out.filter("is_suppressed").get_column("origin").to_list() == ["MA", "SR", "TR"]
    assert out.filter("is_suppressed").get_column("hit_rate").null_count() == 3
    naive = frame.with_columns(is_suppressed=False, suppression_reason=pl.lit(None, pl.String))
    violations = check_disclosure(naive, spec)
    assert "1 published rows have 'hit_count' between 1 and 9" in violations
    assert "1 published rows have 'query_count' - 'hit_count' below 10" in violations
    assert "2 published rows have 'hit_count' below 10" in violations


def test_check_flags_estimates_left_on_suppressed_rows_without_printing_values() -> None:
    frame = _team_table({("A", "MA"): 7, ("B", "MA"): 8, ("A", "NL"): 200, ("B", "NL"): 300})
    leaky = apply_disclosure_control(frame, TEAM_SPEC).with_columns(
        rate_ratio=pl.lit(4.321987), query_count=pl.col("query_count").fill_null(7)
    )
    violations = check_disclosure(leaky, TEAM_SPEC)
    assert "2 suppressed rows carry a value in 'rate_ratio'" in violations
    assert "2 suppressed rows carry a value in 'query_count'" in violations
    text = " ".join(violations)
    assert "4.32" not in text and " 7 " not in text and "MA" not in text


def test_linked_benchmarks_are_suppressed_alike() -> None:
    spec = TEAM_DISPROPORTIONALITY_SPEC.restricted_to(
        ["query_count", "person_count", "population", "rate_ratio"]
    )
    assert spec.estimate_columns == ("rate_ratio",)
    base = dict(
        period_start=dt.date(2025, 1, 1), period_end=dt.date(2025, 12, 31), query_type="person"
    )
    rows = []
    # resident_only has smaller counts: its own secondary choice would differ from team_residents.
    counts = {
        "team_residents": {"A": 5, "B": 40, "C": 30},
        "area_residents": {"A": 5, "B": 40, "C": 30},
        "resident_only": {"A": 3, "B": 12, "C": 25},
    }
    for benchmark, by_team in counts.items():
        for team, n in {**by_team, "ALL": sum(by_team.values())}.items():
            rows.append(
                base | dict(benchmark=benchmark, team_code=team, origin="MA", query_count=n,
                            person_count=n, population=5000, rate_ratio=1.2)
            )  # fmt: skip
    frame = pl.DataFrame(rows)
    out = apply_disclosure_control(frame, spec)
    hidden = set(out.filter("is_suppressed").select("benchmark", "team_code").rows())
    # team_residents pairs A with C (30 < 40), resident_only pairs A with B (12 < 25); the link
    # hides the union under every benchmark.
    assert hidden == {(b, t) for b in counts for t in ("A", "B", "C")}
    assert check_disclosure(out, spec) == []
    unlinked = DisclosureSpec(**{**spec.__dict__, "linked_dimensions": ()})
    out_unlinked = apply_disclosure_control(frame, unlinked)
    assert any("linked dimension" in v for v in check_disclosure(out_unlinked, spec))


def test_spec_and_frame_mismatches_raise() -> None:
    frame = _team_table({("A", "MA"): 30, ("B", "MA"): 40})
    with pytest.raises(ValueError, match="not classified"):
        apply_disclosure_control(frame.with_columns(hit_count=pl.lit(3)), TEAM_SPEC)
    with pytest.raises(ValueError, match="missing"):
        apply_disclosure_control(frame.drop("rate_ratio"), TEAM_SPEC)
    with pytest.raises(TypeError, match="integer"):
        apply_disclosure_control(
            frame.with_columns(pl.col("query_count").cast(pl.Float64)), TEAM_SPEC
        )
    with pytest.raises(ValueError, match="share their key"):
        apply_disclosure_control(pl.concat([frame, frame.head(1)]), TEAM_SPEC)
    with pytest.raises(ValueError, match="both key and count"):
        DisclosureSpec(key_columns=("origin",), count_columns=("origin",))
    with pytest.raises(ValueError, match="not a key column"):
        DisclosureSpec(key_columns=("origin",), margins=(("team_code", "ALL"),))


def test_control_is_idempotent() -> None:
    values = {(t, o): (t_i * 7 + o_i * 5) % 23 for (t_i, t), (o_i, o) in
              itertools.product(enumerate("ABCD"), enumerate("WXYZ"))}  # fmt: skip
    once = apply_disclosure_control(_grid_table(values), TWO_MARGIN_SPEC, round_to=5)
    twice = apply_disclosure_control(once, TWO_MARGIN_SPEC, round_to=5)
    assert once.equals(twice)
    assert check_disclosure(once, TWO_MARGIN_SPEC) == []


@st.composite
def _random_tables(draw: st.DrawFn) -> tuple[pl.DataFrame, DisclosureSpec]:
    teams = [f"T{i}" for i in range(draw(st.integers(1, 4)))]
    origins = [f"O{i}" for i in range(draw(st.integers(1, 4)))]
    values = {
        (t, o): draw(st.one_of(st.integers(0, 15), st.integers(10, 200)))
        for t, o in itertools.product(teams, origins)
    }
    if draw(st.booleans()):
        return _grid_table(values), TWO_MARGIN_SPEC
    return _team_table(values).drop("rate_ratio_ci_low", "rate_ratio_ci_high"), DisclosureSpec(
        key_columns=("team_code", "origin"),
        person_count="person_count",
        event_counts=("query_count",),
        estimate_columns=("rate_ratio",),
        margins=(("team_code", "ALL"),),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_random_tables(), st.sampled_from([None, 5]))
def test_random_tables_pass_the_check_and_hide_no_recoverable_cell(
    table: tuple[pl.DataFrame, DisclosureSpec], round_to: int | None
) -> None:
    frame, spec = table
    out = apply_disclosure_control(frame, spec, round_to=round_to)
    assert out.height == frame.height
    assert check_disclosure(out, spec) == []
    assert out.filter(pl.col("query_count").is_between(1, 9)).height == 0
    hidden = _suppressed_keys(out)
    # total − sum(others) recovers a cell exactly when its group holds one suppressed cell.
    for margin in spec.margins:
        dim = 0 if margin.dimension == "team_code" else 1
        groups: dict[str, list[tuple[str, str]]] = {}
        for key in out.select("team_code", "origin").rows():
            groups.setdefault(key[1 - dim], []).append(key)
        for cells in groups.values():
            if any(k[dim] == "ALL" for k in cells) and len(cells) > 1:
                assert sum(k in hidden for k in cells) != 1
