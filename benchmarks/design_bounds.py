"""What two design changes would save, measured on a warehouse that ``stopcheck run`` wrote.

docs/performance.md ("What the two ratio targets would take") bounds the 50M run and costs
the changes left to decide. This script measures two of them, so that the figures there can be
taken again on any warehouse:

- ``cells``: the persons' cells of one month grouped once for the team tables and the themes.
  Now the team tables group every row and the themes' first group of themes groups the rows
  one of them keeps, with their row-filter flags as keys. Shared, the themes would group every
  row with the flags, and the team tables would sum the flags away. The summed cells are
  checked to equal the team tables' own.
- ``variances``: the raw cross products of the person-clustered intervals on the team tables'
  persons (`assets.disproportionality.count_person_units`). Now every pair of a person's rows
  over quarter × stratum is multiplied (`count_cross_products`). A theme's periods need only
  each quarter's sum of squares and each person's count over the range, squared; the trends
  need every pair of quarters, here from one wide row per person. Only the raw sums are
  timed: the centring within pools of residents works on per-stratum totals, a few thousand
  rows. The range's sums of squares are checked to equal the present cross products' summed
  over the range (both are sums of whole numbers).

Usage::

    .venv/bin/python benchmarks/design_bounds.py --warehouse /tmp/scale_50m/warehouse \\
        [--month 2025-11] [--themes assets/reference/sample_themes.yaml] [--rounds 3]

Each figure is the best of ``--rounds``. Prints aggregates only (seconds, row counts) and exits
1 when a check fails.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from assets import disproportionality as dp  # noqa: E402
from assets.statistics import all_queries, months_of  # noqa: E402
from assets.stats.clusters import count_cross_products  # noqa: E402
from assets.themes import (  # noqa: E402
    flag_queries,
    group_by_row_filters,
    load_themes,
    row_filter_flags,
)

KEYS = ("query_type", "scope", "team_code", "origin")
"""The keys of the team tables' cross products (`person_units_of_cells`)."""


def best_of(rounds: int, function: Callable[[], pl.DataFrame]) -> tuple[float, pl.DataFrame]:
    """The least wall time of `rounds` calls of `function`, and its last result."""
    best, result = float("inf"), None
    for _ in range(rounds):
        started = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - started)
    return best, result


def measure_cells(queries: pl.LazyFrame, month: str, themes_path: Path, rounds: int
                  ) -> tuple[list[tuple[str, float, int]], bool]:
    """(label, seconds, rows) of the persons' cells of `month`, now and shared; and whether the
    team tables' cells summed from the shared cells equal their own."""
    settings = dp.AnalysisSettings()
    themes = load_themes(themes_path)
    group = group_by_row_filters(themes, dp.THEME_ROW_FLAGS)[0]
    flags = row_filter_flags(group)
    months = [month]
    month_rows = queries.filter(pl.col("month") == month)

    team_s, team = best_of(rounds, lambda: dp.count_person_cells(month_rows, settings,
                                                                 months=months))
    themes_s, themed = best_of(rounds, lambda: dp.count_person_cells(
        flag_queries(group, month_rows), settings, months=months, extra=tuple(flags)))
    every_s, every = best_of(rounds, lambda: dp.count_person_cells(
        month_rows.with_columns(**flags), settings, months=months, extra=tuple(flags)))
    keys = [c for c in team.columns if c != "query_count"]
    summed_s, summed = best_of(rounds, lambda: every.lazy().group_by(keys).agg(
        pl.col("query_count").sum()).collect())
    equal = summed.select(team.columns).sort(keys).equals(team.sort(keys))
    return [
        ("now: the team tables' cells, every row", team_s, team.height),
        ("now: the themes' cells, the rows a theme keeps, with flags", themes_s, themed.height),
        ("shared: the themes' cells, every row, with flags", every_s, every.height),
        ("shared: the team tables' cells summed from them", summed_s, summed.height),
    ], equal


def measure_variances(queries: pl.LazyFrame, population: pl.DataFrame, rounds: int
                      ) -> tuple[list[tuple[str, float, int]], bool | None]:
    """(label, seconds, rows) of the raw cross products of the team tables' persons, now and
    per period; and whether the range's sums of squares agree (None: not comparable, as some
    person is in two strata of one key)."""
    settings = dp.AnalysisSettings()
    months = months_of(queries)
    units = dp.count_person_units(queries, population, months=months, settings=settings)
    scoped = units.scoped
    quarters = sorted({units.unit_of[m] for m in months})
    # NOTE: the pools of the last period's population year, as `person_units_of_cells` takes.
    year = dp.choose_population_year(population["year"].unique().to_list(),
                                     dp.list_periods(months)[-1])
    pools = dp.resident_pools(population.filter(pl.col("year") == year), settings)
    count = pl.col("query_count")
    strata = ("unit", *dp.STRATA)

    now_s, _ = best_of(rounds, lambda: count_cross_products(
        scoped, cluster="person_key", count="query_count", keys=KEYS, strata=strata,
        pool_sizes=pools, summed=True))
    # NOTE: lazy, as the pipeline groups: an eager group-by runs on polars' in-memory engine,
    # which took 5.9–6.1 s for each person's range at 50M where `collect` (the streaming
    # engine, polars 2.1's default) took 2.2–2.6 s.
    squares_s, _ = best_of(rounds, lambda: scoped.lazy().group_by(*KEYS, *strata).agg(
        (count * count).sum().alias("squares")).collect())
    person_s, per_person = best_of(rounds, lambda: scoped.lazy().group_by(
        *KEYS, *dp.STRATA, "person_key").agg(count.sum().alias("n")).collect())
    range_s, by_range = best_of(rounds, lambda: per_person.lazy().group_by(
        *KEYS, *dp.STRATA).agg((pl.col("n") * pl.col("n")).sum().alias("squares")).collect())
    two_s, two = best_of(rounds, lambda: per_person.lazy().group_by(*KEYS, "person_key").len()
                         .filter(pl.col("len") > 1).collect())
    wide_s, _ = best_of(rounds, lambda: scoped.lazy().group_by(
        *KEYS, *dp.STRATA, "person_key").agg(
        [count.filter(pl.col("unit") == quarter).sum().alias(quarter) for quarter in quarters]
    ).group_by(*KEYS, *dp.STRATA).agg(
        [(pl.col(first) * pl.col(second)).sum().alias(f"{first} x {second}")
         for i, first in enumerate(quarters) for second in quarters[i:]]).collect())

    # NOTE: the check: the raw cross products (uncentred) of the present code, summed over
    # every pair of units of the range within one stratum, against each person's range count
    # squared. Whole numbers both, exact in any order; a person in two strata of one key
    # would add pairs across strata that the squares leave out.
    uncentred = count_cross_products(scoped, cluster="person_key", count="query_count",
                                     keys=KEYS, strata=strata, summed=True)
    same_stratum = pl.all_horizontal([pl.col(s).eq_missing(pl.col(f"{s}_2"))
                                      for s in dp.STRATA])
    expected = (uncentred.filter(same_stratum).group_by(*KEYS, *dp.STRATA)
                .agg(pl.col("cross").sum().alias("squares")))
    got = by_range.with_columns(pl.col("squares").cast(pl.Float64))
    order = [*KEYS, *dp.STRATA]
    agree = None if two.height else (
        got.with_columns(pl.col(order).cast(pl.String)).sort(order).select(*order, "squares")
        .equals(expected.with_columns(pl.col(order).cast(pl.String)).sort(order)
                .select(*order, "squares")))
    return [
        ("now: every pair of quarter x stratum, centred", now_s, scoped.height),
        ("a theme's periods: each quarter's squares", squares_s, scoped.height),
        ("a theme's periods: each person's range", person_s, per_person.height),
        ("a theme's periods: the range's squares", range_s, by_range.height),
        ("a theme's periods: persons in two strata of a key", two_s, two.height),
        ("the trends: every pair of quarters, one wide row per person", wide_s, scoped.height),
    ], agree


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--month", help="the month of the cells (default: the largest)")
    parser.add_argument("--themes", type=Path,
                        default=REPO / "assets" / "reference" / "sample_themes.yaml")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--parts", nargs="+", choices=("cells", "variances"),
                        default=["cells", "variances"])
    args = parser.parse_args(argv)

    queries = all_queries(
        pl.scan_parquet(args.warehouse / "core_person_queries" / "*.parquet"),
        pl.scan_parquet(args.warehouse / "core_plate_queries" / "*.parquet"))
    population = pl.read_parquet(args.warehouse / "core_population.parquet")
    failed = []
    if "cells" in args.parts:
        month = args.month or (queries.group_by("month").len().sort("len", "month")
                               .collect()["month"][-1])
        rows, equal = measure_cells(queries, month, args.themes, args.rounds)
        print(f"persons' cells of {month} (best of {args.rounds}):")
        for label, seconds, height in rows:
            print(f"  {seconds:7.2f} s  {height:>12,} rows  {label}")
        print(f"  the summed cells equal the team tables' own: {equal}")
        failed += [] if equal else ["cells"]
    if "variances" in args.parts:
        rows, agree = measure_variances(queries, population, args.rounds)
        print(f"raw cross products of the team tables' persons (best of {args.rounds}):")
        for label, seconds, height in rows:
            print(f"  {seconds:7.2f} s  {height:>12,} rows  {label}")
        print("  the range's sums of squares agree with the cross products: "
              + ("not comparable (persons in two strata of a key)" if agree is None
                 else str(agree)))
        failed += [] if agree is not False else ["variances"]
    if failed:
        print(f"check failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
