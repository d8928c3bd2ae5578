"""The two largest statistics steps, this code against a baseline revision, alternated.

The team tables (`assets.team_tables.compute_team_tables`: persons' cells, count models, team
table, trends) and the themes (`compute_thematic_disproportionality`) take most of the
statistics job at every scale (docs/performance.md). This script times them as their assets
compute them, on a warehouse that ``stopcheck run`` wrote, for two versions of the code:

- ``baseline``: the tree of ``--baseline-rev`` (``git archive`` into a temporary folder), or
  the folder ``--baseline-tree`` (one that holds the baseline's ``assets/``); for the team
  tables it needs ``assets/team_tables.py`` (cf611d1 or later: the child's error says so);
- ``current``: this checkout.

Each measurement runs in a fresh subprocess (its own imports, its own peak RSS), and the two
versions alternate ``--rounds`` times: this machine's speed drifts by a fifth or more within
minutes, and alternating spreads that drift over both. Every output table of each round is
compared with the baseline's first with ``check_exact``; the script exits 1 if any differs.

Usage::

    .venv/bin/python benchmarks/statistics_steps.py --warehouse /tmp/scale_5m/warehouse \\
        --baseline-rev HEAD~1 [--steps team themes] [--rounds 3]

Prints aggregates only: seconds, processor seconds, GB, row counts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STEPS = ("team", "themes")
VERSIONS = ("baseline", "current")


def _measure(warehouse: Path, landing: Path, step: str, out: Path) -> dict:
    """Run one step with the code on sys.path; write its tables to `out`; return figures."""
    import resource
    import time

    import polars as pl

    from assets import disproportionality as dp
    from assets.paths import resolve_themes_file
    from assets.statistics import all_queries, months_of
    from assets.themes import load_themes

    queries = all_queries(pl.scan_parquet(warehouse / "core_person_queries" / "*.parquet"),
                          pl.scan_parquet(warehouse / "core_plate_queries" / "*.parquet"))
    population = pl.read_parquet(warehouse / "core_population.parquet")
    months = months_of(queries)
    settings = dp.AnalysisSettings()
    args = dict(months=months, settings=settings)
    started, cpu = time.perf_counter(), os.times()
    if step == "themes":
        # NOTE: the themes a run over the landing zone would read (the synthetic sample's name
        # its teams).
        themes = load_themes(resolve_themes_file("", landing))
        tables = {"out_thematic_disproportionality":
                  dp.compute_thematic_disproportionality(queries, population, themes, **args)}
    else:
        from assets.team_tables import compute_team_tables

        tables = dict(compute_team_tables(queries, population, **args))
    seconds = time.perf_counter() - started
    done = os.times()
    for name, table in tables.items():
        table.write_parquet(out / f"{name}.parquet")
    return {"seconds": seconds,
            "cpu_seconds": (done.user - cpu.user) + (done.system - cpu.system),
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
            "rows": {name: table.height for name, table in tables.items()}}


def _child(tree: Path, warehouse: Path, landing: Path, step: str, out: Path) -> dict:
    """`_measure` in a fresh interpreter whose `assets` package comes from `tree`."""
    # NOTE: the editable install's finder (site-packages) serves `assets.*` from this checkout
    # whenever the tree on sys.path lacks a module: it is removed, so that a baseline never
    # runs a module of the current code.
    code = ("import json, sys; from pathlib import Path; "
            "sys.meta_path[:] = [f for f in sys.meta_path "
            "if not getattr(f, '__module__', '').startswith('__editable__')]; "
            "sys.path.insert(0, sys.argv[1]); "
            "sys.path.insert(0, sys.argv[2]); import statistics_steps as s; "
            "print(json.dumps(s._measure(Path(sys.argv[3]), Path(sys.argv[4]), sys.argv[5], "
            "Path(sys.argv[6]))))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent), str(tree), str(warehouse),
         str(landing), step, str(out)], capture_output=True, text=True, env=env, cwd=tree)
    if done.returncode != 0:
        raise SystemExit(f"{step} with {tree} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _same_tables(first: Path, other: Path) -> list[str]:
    """Names of the tables in `first` that differ from `other` (check_exact)."""
    import polars as pl
    from polars.testing import assert_frame_equal

    differ = []
    for path in sorted(first.glob("*.parquet")):
        try:
            assert_frame_equal(pl.read_parquet(path), pl.read_parquet(other / path.name),
                               check_exact=True)
        except (AssertionError, FileNotFoundError):
            differ.append(path.stem)
    return differ


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--landing", type=Path,
                        help="the landing zone the warehouse was made from, for its themes "
                             "(default: the folder landing/ beside the warehouse)")
    baseline_of = parser.add_mutually_exclusive_group()
    baseline_of.add_argument("--baseline-rev", default="HEAD",
                             help="git revision of the baseline (default HEAD: uncommitted "
                                  "changes against the last commit)")
    baseline_of.add_argument("--baseline-tree", type=Path,
                             help="a folder holding the baseline's assets/ instead (no git)")
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    # NOTE: absolute: each version's process runs in its own tree.
    warehouse = args.warehouse.resolve()
    landing = (args.landing or warehouse.parent / "landing").resolve()
    for folder in (warehouse, landing):
        if not folder.is_dir():
            raise SystemExit(f"not a folder: {folder} (see --help)")
    with tempfile.TemporaryDirectory(prefix="statistics_steps_") as scratch:
        scratch = Path(scratch)
        if args.baseline_tree is not None:
            baseline = args.baseline_tree.resolve()
        else:
            baseline = scratch / "baseline"
            baseline.mkdir()
            archive = subprocess.run(["git", "archive", args.baseline_rev], cwd=REPO,
                                     capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive, check=True)
        trees = {"baseline": baseline, "current": REPO}
        failed = False
        for step in args.steps:
            figures: dict[str, list[dict]] = {v: [] for v in VERSIONS}
            reference = None
            for round_ in range(args.rounds):
                for version in VERSIONS:
                    out = scratch / f"{step}-{version}-{round_}"
                    out.mkdir()
                    figures[version].append(_child(trees[version], warehouse, landing, step, out))
                    reference = reference or out
                    differ = _same_tables(reference, out)
                    if differ:
                        failed = True
                        print(f"{step}: {version} round {round_ + 1} differs from the "
                              f"baseline in {', '.join(differ)}")
            print(f"\n{step} ({args.rounds} rounds, alternated; rows "
                  f"{figures['baseline'][0]['rows']})")
            print(f"  {'version':10s} {'seconds':>28s} {'median':>8s} {'cpu s':>8s} "
                  f"{'peak GB':>8s}")
            for version in VERSIONS:
                runs = figures[version]
                seconds = [r["seconds"] for r in runs]
                print(f"  {version:10s} {' / '.join(f'{s:.2f}' for s in seconds):>28s} "
                      f"{statistics.median(seconds):8.2f} "
                      f"{statistics.median(r['cpu_seconds'] for r in runs):8.2f} "
                      f"{max(r['peak_rss_gb'] for r in runs):8.2f}")
            ratio = (statistics.median(r["seconds"] for r in figures["current"])
                     / statistics.median(r["seconds"] for r in figures["baseline"]))
            print(f"  current / baseline (medians): {ratio:.2f}")
        print("\noutputs differ" if failed else "\noutputs identical")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
