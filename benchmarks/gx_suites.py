"""GX suites on one batch: stopcheck's validation path against plain GX, in the same invocation.

For each suite, on the same frame (months of a warehouse concatenated), each variant in its own
subprocess so that its peak RSS is its own:

- ``plain_gx`` (the baseline): the whole suite as one GX batch on GX's pandas engine, on the
  whole frame read into pandas, with GX's defaults;
- ``stopcheck``: ``pipelines.gx.validate_with_suite`` on the Parquet files, as the checks run:
  the schema on a 0-row pandas frame, every other expectation on GX's SQL engine on DuckDB
  (docs/validation.md).

Both must give the same outcome (success and unexpected count of every expectation): the same
suite on two GX engines. The script exits 1 if they differ. GX is imported and warmed up on 1,000
rows before the clock starts; reading the files into pandas is not timed for ``plain_gx``.

Usage::

    .venv/bin/python benchmarks/gx_suites.py --warehouse /tmp/scale_5m/warehouse [--months 10]

The warehouse is one that ``stopcheck run`` wrote, e.g. the one ``run_scale.py --keep`` keeps.
Prints aggregates only: row counts, seconds, GB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SUITES = ("raw_person_queries", "core_person_queries", "raw_plate_queries", "core_plate_queries")
VARIANTS = ("plain_gx", "stopcheck")


def _load(warehouse: Path, suite: str, months: int | None) -> tuple[list[Path], dict[str, Any]]:
    import polars as pl

    from pipelines import gx

    files = sorted((warehouse / suite).glob("*.parquet"))[:months]
    suite_path = REPO / "expectations" / f"{suite}.json"
    parameters = gx.build_default_parameters(
        gx.read_suite_parameters(gx.load_suite_json(suite_path)), [f.stem for f in files], {}
    )
    parameters["team_codes"] = (
        pl.read_parquet(warehouse / "core_team_areas.parquet")["team_code"].unique().sort().to_list()
    )
    return files, parameters


def _validate_plain(frame: Any, suite_path: Path, parameters: dict[str, Any]) -> list[tuple]:
    """The whole suite as one batch on the whole pandas frame, GX defaults otherwise."""
    from great_expectations.core import ExpectationSuite, ValidationDefinition

    from pipelines import gx

    context = gx._new_context()
    suite_json = gx.load_suite_json(suite_path)
    batch_definition = (
        context.data_sources.add_pandas("plain")
        .add_dataframe_asset(suite_json["name"])
        .add_batch_definition_whole_dataframe("whole_frame")
    )
    suite = context.suites.add(
        ExpectationSuite(name=suite_json["name"], expectations=suite_json["expectations"])
    )
    validation = context.validation_definitions.add(
        ValidationDefinition(name=suite.name, data=batch_definition, suite=suite)
    )
    result = validation.run(
        batch_parameters={"dataframe": frame},
        expectation_parameters=parameters,
        result_format=gx.GX_RESULT_FORMAT,
    )
    return [
        (item.expectation_config.type, bool(item.success), (item.result or {}).get("unexpected_count"))
        for item in result.results
    ]


def _validate_stopcheck(files: Any, suite_path: Path, parameters: dict[str, Any]) -> list[tuple]:
    from pipelines import gx

    outcome = gx.validate_with_suite(files, suite_path, parameters)
    return [(e.expectation_type, e.success, e.unexpected_count) for e in outcome.expectations]


def run_one(warehouse: Path, suite: str, variant: str, months: int | None) -> dict[str, Any]:
    """Time one variant on one suite in this process; return seconds, rows and outcome."""
    import polars as pl

    from pipelines import gx

    files, parameters = _load(warehouse, suite, months)
    suite_path = REPO / "expectations" / f"{suite}.json"
    rows = pl.scan_parquet(files).select(pl.len()).collect().item()
    if variant == "plain_gx":
        frame = pl.concat([pl.read_parquet(f) for f in files]).rechunk()
        _validate_plain(gx.convert_to_pandas(frame.head(1000)), suite_path, parameters)  # warm-up
        batch, validate = gx.convert_to_pandas(frame), _validate_plain
        del frame
    else:
        _validate_stopcheck(pl.read_parquet(files[0], n_rows=1000), suite_path, parameters)
        batch, validate = files, _validate_stopcheck
    before_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    start = time.perf_counter()
    outcome = validate(batch, suite_path, parameters)
    seconds = time.perf_counter() - start
    return {
        "suite": suite, "variant": variant, "rows": rows, "seconds": seconds,
        "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
        "peak_before_gb": before_gb, "outcome": sorted(map(list, outcome), key=str),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--months", type=int, default=None, help="first N months (default all)")
    parser.add_argument("--suites", nargs="+", default=list(SUITES), choices=SUITES)
    parser.add_argument("--one", nargs=2, metavar=("SUITE", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.warehouse, args.one[0], args.one[1], args.months)))
        return 0

    print(f"{'suite':22s} {'rows':>10s} {'plain GX s':>10s} {'stopcheck s':>11s} {'speed-up':>8s} "
          f"{'rows/s':>8s} {'extra GB plain → stopcheck':>27s}")
    same = True
    for suite in args.suites:
        runs = {}
        for variant in VARIANTS:
            command = [sys.executable, __file__, "--warehouse", str(args.warehouse),
                       "--one", suite, variant]
            if args.months:
                command += ["--months", str(args.months)]
            done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO)
            runs[variant] = json.loads(done.stdout.strip().splitlines()[-1])
        plain, ours = runs["plain_gx"], runs["stopcheck"]
        same &= plain["outcome"] == ours["outcome"]
        extra = [r["peak_gb"] - r["peak_before_gb"] for r in (plain, ours)]
        print(f"{suite:22s} {ours['rows']:>10,d} {plain['seconds']:>10.1f} {ours['seconds']:>11.1f} "
              f"{plain['seconds'] / ours['seconds']:>7.2f}x {ours['rows'] / ours['seconds'] / 1e6:>6.2f}M "
              f"{extra[0]:>16.2f} → {extra[1]:.2f}"
              + ("" if plain["outcome"] == ours["outcome"] else "  OUTCOMES DIFFER"))
    print("outcomes identical" if same else "outcomes differ: see OUTCOMES DIFFER above")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
