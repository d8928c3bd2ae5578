"""`stopcheck` console script: check a landing zone, run the pipeline in-process, open the
Dagster UI, or write a synthetic landing zone.

`stopcheck check` judges the landing zone and the themes file in seconds (assets/preflight.py).
`stopcheck run` runs that check first and stops on a blocking finding; then it materialises every
asset for every month of the landing zone: the reference job once, the monthly job per month (a
bad month fails alone and the others keep their progress; small months run two at a time,
pipelines/runs.py), then the statistics job when every month succeeded (on small years the
themes in a second process), showing progress per month and step, and ends with a summary. It
exits non-zero naming each failed asset and partition.
Messages are our own and aggregate: they never hold a value from a person table.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import gc
import os
import sys
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from assets.provenance import PROJECT_ROOT
from pipelines.progress import NULL_COLLECTOR, Collector, LogCollector, RichCollector
from pipelines.runs import StepFailure


DAGSTER_YAML = """\
# The Dagster instance of `stopcheck run` and `make dev` (DESIGN.md §3): SQLite in this folder.
# Written by stopcheck when absent; docs/production/dagster.yaml is the PostgreSQL instance.
telemetry:
  enabled: false
"""


def ensure_dagster_home() -> Path:
    """DAGSTER_HOME, defaulting to .dagster/ in the repository (DESIGN.md §3), with a dagster.yaml
    that turns telemetry off when it has none (an empty one, from earlier versions, counts)."""
    home = Path(os.environ.get("DAGSTER_HOME") or PROJECT_ROOT / ".dagster").resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() or not config.read_text(encoding="utf-8").strip():
        config.write_text(DAGSTER_YAML, encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def run_pipeline(landing: Path, warehouse: Path, instance, *, theme: str | None = None,
                 backfill: tuple[str, str] | None = None, themes_file: str = "",
                 progress: Collector = NULL_COLLECTOR, publish: bool = True,
                 month_processes: int | None = None) -> list[StepFailure]:
    """Materialise every asset for every month of `landing` into `warehouse`; return failures.

    With `backfill` (first, last month), only those months are (re)loaded — a backfill — and the
    statistics then cover every month materialised. With `theme`, the last step computes (and
    publishes) that theme only: the thematic job. `progress` hears of every stage, step and month.
    `publish=False` computes the statistics and leaves publication out (tests of the numbers).
    `month_processes` sets how many processes run months side by side (default: as
    `pipelines.runs.choose_month_processes` decides; one on an ephemeral instance).
    """
    from assets.frames import list_months, list_unexpected_files
    from assets.partitions import MONTHS
    from assets.stats.processors import available_processors
    from pipelines.definitions import build_definitions
    from pipelines.runs import (
        choose_month_processes,
        count_month_rows,
        execute,
        month_workers,
        run_months,
        run_statistics,
        statistics_beside,
    )

    defs = build_definitions(str(landing), str(warehouse), themes_file)
    months = list_months(landing)
    if not months:
        return [StepFailure("-", "landing", None, f"{landing}: no monthly query files found")]
    known = set(instance.get_dynamic_partitions(MONTHS.name))
    instance.add_dynamic_partitions(MONTHS.name, [m for m in months if m not in known])

    def run(job_name: str, **kwargs) -> list[StepFailure]:
        return execute(defs, instance, job_name, **kwargs, report=lambda inc, message:
                       progress.update("steps", inc=inc, message=message))

    selected = [m for m in months if backfill is None or backfill[0] <= m <= backfill[1]]
    rows_of = functools.cache(lambda month: count_month_rows(landing, month))
    if month_processes is None:
        # NOTE: a worker process reaches the runs through the instance's storage: an
        # ephemeral instance lives in this process only.
        month_processes = 1 if instance.is_ephemeral else choose_month_processes(
            [rows_of(month) for month in selected], available_processors())
    # NOTE: the objects frozen after each run (runs.execute) are thawed when the runs end, so a
    # process that calls this again (tests, notebooks) can still collect them.
    try:
        with ExitStack() as stack:
            # NOTE: the workers start now and import while the reference tables run.
            workers = stack.enter_context(month_workers(
                month_processes, instance, (str(landing), str(warehouse), themes_file)))
            with progress("reference tables"):
                failures = run("reference_job")
            if failures:
                return failures
            failures = [StepFailure("-", "landing", None, f"{path}: not a <YYYY-MM>.parquet "
                                    "or .csv export; rename or remove it")
                        for path in list_unexpected_files(landing)]
            if not selected:
                return [StepFailure("-", "landing", None, f"no month of {landing} in {backfill}")]
            with progress("monthly runs" + (f", {month_processes} at a time"
                                            if month_processes > 1 else "")):
                failures += run_months(defs, instance, selected, warehouse, workers=workers,
                                       progress=progress)
            if failures:
                return failures
            # NOTE: the month worker, already started, computes the themes beside the other
            # statistics where both fit in memory (pipelines/runs.py); otherwise it ends now,
            # and the memory it holds is free for the statistics.
            if theme or not (workers and statistics_beside([rows_of(m) for m in months])):
                stack.close()
                workers = None
            if theme:
                config = {"ops": {"out_thematic_disproportionality": {
                    "config": {"themes": [theme]}}}}
                with progress(f"theme {theme} and publication"):
                    return run("thematic_job", config=config)
            with progress("statistics and publication" if publish else "statistics"):
                return run_statistics(defs, instance, workers=workers, publish=publish,
                                      progress=progress)
    finally:
        gc.unfreeze()


def _resolve_paths() -> tuple[Path, Path, Path]:
    """Landing zone, warehouse and themes file of this run (DESIGN.md §3), generating the built-in
    sample when the default landing zone is used and absent."""
    from assets.paths import DEFAULT_LANDING, DEFAULT_WAREHOUSE, resolve_dir, resolve_themes_file

    landing = resolve_dir("", "STOPCHECK_LANDING_DIR", DEFAULT_LANDING)
    warehouse = resolve_dir("", "STOPCHECK_WAREHOUSE_DIR", DEFAULT_WAREHOUSE)
    if landing == DEFAULT_LANDING.resolve() and not (landing / "meos").exists():
        from assets.synthetic import generate_sample

        print(f"built-in sample absent: generating it in {landing}")
        generate_sample(landing)
    return landing, warehouse, resolve_themes_file("", landing)


def _cmd_check(args: argparse.Namespace) -> int:
    from assets.preflight import SCAN_ROWS, check_landing_zone, format_report

    landing, _, themes_file = _resolve_paths()
    report = check_landing_zone(landing, themes_file, scan_rows=None if args.full else SCAN_ROWS)
    print(format_report(report))
    return 1 if report.is_blocked else 0


def _cmd_run(args: argparse.Namespace) -> int:
    import time

    import dagster as dg

    from assets.preflight import check_landing_zone, format_report
    from assets.run_summary import format_summary, summarise_run

    began = time.monotonic()
    home = ensure_dagster_home()
    landing, warehouse, themes_file = _resolve_paths()
    print(f"landing zone: {landing}\nwarehouse:    {warehouse}\nthemes file:  {themes_file}\n"
          f"DAGSTER_HOME: {home}")
    if not args.skip_check:
        report = check_landing_zone(landing, themes_file)
        if report.is_blocked:
            print("\n" + format_report(report), file=sys.stderr)
            print("\nstopcheck run stopped before it started (`stopcheck check` shows the same; "
                  "--skip-check runs anyway)", file=sys.stderr)
            return 1
        print(f"pre-flight check: {report.count('warning')} warning(s), nothing blocks the run"
              + (" (`stopcheck check` lists them)" if report.count("warning") else ""))
    progress = RichCollector() if sys.stdout.isatty() else LogCollector()
    try:
        with dg.DagsterInstance.get() as instance:
            failures = run_pipeline(landing, warehouse, instance, theme=args.theme,
                                    backfill=args.backfill, progress=progress)
    finally:
        progress.close()
    if failures:
        print(f"\nstopcheck run FAILED ({len(failures)} failed step(s)):", file=sys.stderr)
        for failure in failures:
            print(f"  - {failure}", file=sys.stderr)
        if any(f.job == "monthly_job" for f in failures):
            print("statistics skipped: they need every month of the landing zone",
                  file=sys.stderr)
        return 1
    print(f"\ndone. outputs: {warehouse}\n")
    print(format_summary(summarise_run(warehouse), wall_seconds=time.monotonic() - began))
    return 0


def _cmd_dev(args: argparse.Namespace) -> int:
    """The Dagster UI on this repository's code location, with the instance of `stopcheck run`."""
    ensure_dagster_home()
    dagster = Path(sys.executable).with_name("dagster")
    command = [str(dagster), "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"), *args.dagster_args]
    os.execv(command[0], command)
    return 0  # pragma: no cover - execv does not return


def _cmd_sample(args: argparse.Namespace) -> int:
    from assets.synthetic import SampleSpec, generate_sample

    spec = SampleSpec()
    if args.no_effects:
        spec = spec.without_effects()
    overrides = {"months": args.months, "seed": args.seed}
    if args.queries is not None:
        overrides["person_queries"] = args.queries
        overrides["plate_queries"] = round(args.queries * spec.plate_queries / spec.person_queries)
    spec = replace(spec, **{k: v for k, v in overrides.items() if v is not None})
    truth = generate_sample(Path(args.out), spec)
    print(f"wrote a synthetic landing zone to {args.out}: {len(truth['months'])} months, "
          f"{truth['persons_count']} persons (truth in {Path(args.out) / 'truth.json'})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stopcheck", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser(
        "check", help="pre-flight: judge the landing zone and the themes file in seconds")
    check.add_argument("--full", action="store_true",
                       help="scan every row for raw identifiers (default: every row of small "
                            "files, a spread of rows of larger ones)")
    check.set_defaults(func=_cmd_check)
    run = commands.add_parser("run", help="materialise every asset for every month")
    run.add_argument("--theme", help="compute and publish only this theme of the themes file")
    run.add_argument("--backfill", nargs=2, metavar=("FIRST", "LAST"),
                     help="reload only the months FIRST..LAST (YYYY-MM), then the statistics")
    run.add_argument("--skip-check", action="store_true",
                     help="do not run the pre-flight check (`stopcheck check`) first")
    run.set_defaults(func=_cmd_run)
    # NOTE: no -h of its own: every argument goes on to dagster dev (-p PORT, -h HOST).
    dev = commands.add_parser("dev", add_help=False,
                              help="the Dagster UI (dagster dev) on the same instance; other "
                                   "arguments go on to dagster dev")
    dev.set_defaults(func=_cmd_dev)
    sample = commands.add_parser("sample", help="write a synthetic landing zone")
    sample.add_argument("--out", required=True, help="landing-zone folder to write")
    sample.add_argument("--months", type=int, help="export months (default 12, from 2025-01)")
    sample.add_argument("--queries", type=int,
                        help="expected person queries over all months (default 300000); "
                             "plate queries scale along")
    sample.add_argument("--seed", type=int, help="random seed (default 20250101)")
    sample.add_argument("--no-effects", action="store_true",
                        help="no origin, darkness or hit-rate effects (a null sample)")
    sample.set_defaults(func=_cmd_sample)
    return parser


def main(argv: list[str] | None = None) -> int:
    import warnings

    # NOTE: partitions_def on asset checks is a Dagster preview feature we rely on on purpose
    # (FACTS.md); its warning on every run says nothing to an operator.
    warnings.filterwarnings("ignore", message=".*is currently in preview.*")
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "dev":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.dagster_args = extra
    # NOTE: what the command leaves behind (Dagster, GX, altair and the frames: millions of
    # objects) is frozen as the process exits, so Python's last garbage collection does not walk
    # it: 1.7 s less after a run of the sample. By then every file is written and closed
    # (atomic writes, the instance closed by its `with`); registered here, not frozen on
    # return, so that a process calling main() again (tests) still collects between calls.
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
    from assets.frames import ConfigError

    try:
        return args.func(args)
    except ConfigError as error:
        # NOTE: its message names files, settings and themes, never data: shown in full, as one
        # line an operator can act on, not as a traceback (e.g. a suite file left out of a
        # deployment stops the definitions, pipelines/definitions.py).
        print(f"stopcheck {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
