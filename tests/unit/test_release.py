"""Theme cells against the team table: no small count by differencing (assets/release.py)."""

from __future__ import annotations

from datetime import date

import polars as pl

from assets.disclosure import check_disclosure
from assets.release import (
    SPECS,
    Released,
    flag_theme_differences,
    release_tables,
    write_checked_release,
)

TEAMS = ("T1", "T2", "T3")


def _table(counts: dict[str, tuple[int, int]], theme: str | None = None) -> pl.DataFrame:
    """One NL cell per team, (person_count, query_count) each, plus the ALL total."""
    rows = {**counts, "ALL": (sum(p for p, _ in counts.values()), sum(q for _, q in counts.values()))}
    frame = pl.DataFrame({
        "period_start": [date(2025, 1, 1)] * len(rows),
        "period_end": [date(2025, 12, 31)] * len(rows),
        "query_type": ["person"] * len(rows),
        "benchmark": ["team_residents"] * len(rows),
        "team_code": list(rows),
        "origin": ["NL"] * len(rows),
        "person_count": [p for p, _ in rows.values()],
        "query_count": [q for _, q in rows.values()],
        "rate_ratio": [1.2] * len(rows),
    })
    return frame if theme is None else frame.select(pl.lit(theme).alias("theme"), pl.all())


def test_a_small_difference_in_queries_or_persons_flags_the_theme_cell() -> None:
    teams = _table({"T1": (40, 90), "T2": (40, 90), "T3": (40, 90)})
    theme = _table({"T1": (40, 87),    # 3 queries outside the theme: flagged
                    "T2": (38, 60),    # 2 persons with no theme query: flagged
                    "T3": (40, 90)},   # the theme is the whole cell: nothing new, not flagged
                   theme="traffic")
    flagged = flag_theme_differences(theme, teams, threshold=10)
    # ALL: 120 - 118 = 2 persons with no theme query, also small
    assert dict(zip(flagged["team_code"], flagged["is_suppressed"], strict=True)) == {
        "T1": True, "T2": True, "T3": False, "ALL": True}
    assert flagged.height == theme.height


def test_released_theme_table_hides_differenced_cells_and_their_recovery() -> None:
    teams = _table({"T1": (40, 90), "T2": (40, 90), "T3": (40, 90)})
    theme = _table({"T1": (40, 87), "T2": (20, 45), "T3": (20, 45)}, theme="traffic")
    released = release_tables(
        {"out_team_disproportionality": teams, "out_thematic_disproportionality": theme},
        threshold=10, round_to=None)
    out = released["out_thematic_disproportionality"].table
    hidden = dict(zip(out["team_code"], out["is_suppressed"], strict=True))
    assert hidden["T1"]  # 3 queries outside the theme
    # T1 alone would be recovered from ALL minus T2 and T3: a second cell is hidden too
    assert sum(hidden.values()) >= 2
    assert out.filter(pl.col("is_suppressed"))["query_count"].null_count() == sum(hidden.values())
    spec = SPECS["out_thematic_disproportionality"]
    assert check_disclosure(out, spec.restricted_to(out.columns), threshold=10) == []
    # the team table itself is untouched by the theme
    assert not released["out_team_disproportionality"].table["is_suppressed"].any()


def test_a_theme_within_another_is_checked_against_it() -> None:
    teams = _table({"T1": (400, 900), "T2": (400, 900), "T3": (400, 900)})
    outer = _table({"T1": (100, 200), "T2": (100, 200), "T3": (100, 200)}, theme="night")
    inner = _table({"T1": (100, 196),   # 4 night queries outside the inner theme
                    "T2": (50, 100), "T3": (50, 100)}, theme="young_night")
    both = pl.concat([outer, inner])
    alone = flag_theme_differences(both, teams, threshold=10)
    assert not alone["is_suppressed"].any()  # against the team table every difference is large
    nested = flag_theme_differences(both, teams, threshold=10, nested=[("young_night", "night")])
    hidden = nested.filter(pl.col("is_suppressed")).select("theme", "team_code").rows()
    assert hidden == [("young_night", "T1")]


def test_a_published_table_that_fails_the_re_read_is_removed_again(tmp_path) -> None:
    good = release_tables({"out_team_disproportionality": _table({"T1": (40, 90), "T2": (40, 90)})},
                          threshold=10, round_to=None)
    written, check = write_checked_release(tmp_path, good, {}, threshold=10)
    assert check["passed"] and all(path.exists() for path in written)
    # a table that skipped suppression: 3 persons published in T1
    leaked = _table({"T1": (3, 5), "T2": (40, 90)}).with_columns(
        is_suppressed=pl.lit(False), suppression_reason=pl.lit(None, pl.String))
    written, check = write_checked_release(
        tmp_path, {"out_team_disproportionality": Released(leaked, 0)}, {}, threshold=10)
    assert not check["passed"]
    assert check["metadata"]["tables_failing"] == 1
    assert not any(path.exists() for path in written)
