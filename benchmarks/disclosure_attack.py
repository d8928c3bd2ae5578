"""Figures of disclosure control on a warehouse: the attacker model against what is published.

Usage (after `stopcheck run`, or on any warehouse)::

    .venv/bin/python benchmarks/disclosure_attack.py [WAREHOUSE [LANDING]]

Prints, for the CSVs in <warehouse>/publication/ (what was published), the attacker's figures
(suppressed and pinned counts, programmes, seconds), and then runs `release_tables` again on
the warehouse's out_ tables and prints the judge loop's figures (rounds, complements added,
suppressed rows per table, time). Aggregates only.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import polars as pl

from assets.attacker import Rules, attack
from assets.release import (
    ORDER,
    declare_relations,
    prepare_repeat_checks,
    read_published,
    release_tables,
    structural_zeros,
)
from assets.paths import resolve_themes_file
from assets.themes import load_themes


def main(warehouse: Path, landing: Path) -> None:
    themes = load_themes(resolve_themes_file("", landing))
    tables = {n: pl.read_parquet(warehouse / f"{n}.parquet") for n in ORDER
              if (warehouse / f"{n}.parquet").exists()}
    truth = {n: prepare_repeat_checks(t) if n == "out_repeat_checks" else t
             for n, t in tables.items()}
    published = read_published(warehouse / "publication")
    if published:
        digits = None if "suppression_reason" in next(iter(published.values())).columns else 3
        report = attack(published, declare_relations(truth, reference="NL", themes=themes),
                        Rules(threshold=10, significant_digits=digits), public=truth,
                        truth=truth, structural=structural_zeros(truth, themes))
        print("published:", {n: int(t["is_suppressed"].sum()) for n, t in published.items()})
        print("attacker on the publication:", report.stats)
    log: dict = {}
    started = time.perf_counter()
    released = release_tables(tables, threshold=10, round_to=None, themes=themes, log=log)
    print("release_tables:", {n: r.suppressed_count for n, r in released.items()})
    print("judge:", log, "seconds:", round(time.perf_counter() - started, 1))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "data/warehouse"),
         Path(sys.argv[2] if len(sys.argv) > 2 else "data/sample/landing"))
