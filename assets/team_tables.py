"""The three team tables from one read of the persons' cells. Pure and Dagster-free.

out_count_models, out_team_disproportionality and out_team_trends group the same persons'
cells (`assets.disproportionality.count_person_units`); this module reads them once and
computes the tables side by side.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import polars as pl

from assets.disproportionality import (
    AnalysisSettings,
    compute_count_models,
    compute_team_disproportionality,
    count_person_units,
)
from assets.stats.processors import side_by_side
from assets.trends import compute_team_trends

TEAM_TABLE_NAMES = ("out_count_models", "out_team_disproportionality", "out_team_trends")
"""The team tables, in the order `compute_team_tables` gives them."""


def compute_team_tables(
    queries: pl.LazyFrame, population: pl.DataFrame, *, months: list[str],
    settings: AnalysisSettings, names: Iterable[str] = TEAM_TABLE_NAMES,
) -> Iterator[tuple[str, pl.DataFrame]]:
    """(name, table) for each team table in `names`, in the order of `TEAM_TABLE_NAMES`, each
    as soon as it and those before it are done: the arguments of `compute_team_disproportionality`
    for every one of them."""
    wanted = set(names)
    names = [name for name in TEAM_TABLE_NAMES if name in wanted]
    # NOTE: the count models alone group the query rows themselves, in one group-by instead of
    # the cells' several.
    units = (count_person_units(queries, population, months=months, settings=settings)
             if {"out_team_disproportionality", "out_team_trends"} & wanted else None)
    arguments = dict(months=months, settings=settings, units=units)
    computations = {
        "out_count_models": partial(compute_count_models, queries, population, **arguments),
        "out_team_disproportionality": partial(compute_team_disproportionality, queries,
                                               population, **arguments),
        "out_team_trends": partial(compute_team_trends, queries, population, **arguments),
    }
    # NOTE: the three tables side by side on small cells (`side_by_side`): each alone leaves
    # part of two processors idle (small polars and numpy steps wait on the interpreter lock),
    # and each table is the same wherever it was computed. At 5M queries the three 9.9–13.1 →
    # 8.1–8.7 s, 0.15 GB more at the peak.
    threads = side_by_side(units.scoped.height) if units is not None else 1
    with ThreadPoolExecutor(threads) as pool:
        futures = {name: pool.submit(computations[name]) for name in names}
        for name, future in futures.items():
            yield name, future.result()
