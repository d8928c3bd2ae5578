"""`stopcheck` console script: check a landing zone, run the pipeline in one process, open the
Dagster UI, or write a synthetic landing zone.

`stopcheck check` judges the landing zone and the themes file in seconds (assets/preflight.py).
`stopcheck run` runs that check first and stops on a blocking finding; then it materialises every
asset for every month of the landing zone: the reference job once, the monthly job per month (a
bad month fails alone and the others keep their progress), then the statistics job when every
month succeeded, showing progress per month and step, and ends with a summary. It exits non-zero
naming each failed asset and partition. Messages are our own and aggregate: they never hold a
value from a person table.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from assets.provenance import PROJECT_ROOT
from pipelines.progress import NULL_COLLECTOR, Collector, LogCollector, RichCollector


@dataclass(frozen=True)
class StepFailure:
    """A failed step of a run: which asset (or check), which partition, and our message."""

    job: str
    step: str
    partition: str | None
    message: str

    def __str__(self) -> str:
        where = f" [{self.partition}]" if self.partition else ""
        return f"{self.step}{where}: " + self.message.replace("\n", "\n    ")


def _failures(result, job: str, partition: str | None) -> list[StepFailure]:
    failures = []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.event_specific_data.error
            # NOTE: the innermost cause is our own message (InputError, RawIdentifierError ...);
            # the outer ones are Dagster's wrappers. It is shown in full: assets/privacy.py has
            # already replaced any message that may quote person-level values.
            while error.cause is not None:
                error = error.cause
            message = error.message.strip() if error.message else error.cls_name
            failures.append(StepFailure(job, event.step_key, partition, message))
    if not result.success and not failures:
        failures.append(StepFailure(job, job, partition, "run failed"))
    return failures


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


QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
"""Console logging of in-process runs: warnings and errors only (the event log keeps all)."""


def _step_reporter(progress: Collector):
    """An event-log listener that reports each finished step, with its duration, to `progress`."""
    from dagster import DagsterEventType

    started: dict[str, float] = {}

    def listen(entry) -> None:
        if not entry.is_dagster_event or entry.step_key is None:
            return
        kind = entry.get_dagster_event().event_type
        if kind == DagsterEventType.STEP_START:
            started[entry.step_key] = entry.timestamp
            progress.update("steps", inc=0, message=f"{entry.step_key} ...")
        elif kind in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            seconds = entry.timestamp - started.get(entry.step_key, entry.timestamp)
            outcome = "ok" if kind == DagsterEventType.STEP_SUCCESS else "FAILED"
            progress.update("steps", message=f"{entry.step_key} {outcome} in {seconds:.1f} s")

    return listen


def run_pipeline(landing: Path, warehouse: Path, instance, *, theme: str | None = None,
                 backfill: tuple[str, str] | None = None, themes_file: str = "",
                 progress: Collector = NULL_COLLECTOR,
                 publish: bool = True) -> list[StepFailure]:
    """Materialise every asset for every month of `landing` into `warehouse`; return failures.

    With `backfill` (first, last month), only those months are (re)loaded — a backfill — and the
    statistics then cover every month materialised. With `theme`, the last step computes (and
    publishes) that theme only: the thematic job. `progress` hears of every stage, step and month.
    `publish=False` computes the statistics and leaves publication out (tests of the numbers).
    """
    import time
    import uuid

    import dagster as dg

    from assets.frames import list_months, list_unexpected_files
    from assets.partitions import MONTHS
    from pipelines.definitions import build_definitions

    defs = build_definitions(str(landing), str(warehouse), themes_file)
    months = list_months(landing)
    if not months:
        return [StepFailure("-", "landing", None, f"{landing}: no monthly query files found")]
    known = set(instance.get_dynamic_partitions(MONTHS.name))
    instance.add_dynamic_partitions(MONTHS.name, [m for m in months if m not in known])
    listen = _step_reporter(progress)

    def execute(job_name: str, partition: str | None = None, config: dict | None = None,
                asset_selection: list | None = None):
        job = defs.resolve_job_def(job_name)
        run_id = str(uuid.uuid4())
        instance.add_event_listener(run_id, listen)
        result = job.execute_in_process(
            instance=instance, partition_key=partition, run_config={**QUIET, **(config or {})},
            raise_on_error=False, run_id=run_id, asset_selection=asset_selection)
        failures = _failures(result, job_name, partition)
        # NOTE: the run result holds every step's frames in reference cycles that Python rarely
        # collects; without this each month's frames stay resident (docs/performance.md, fix 1).
        del result
        gc.collect()
        # NOTE: what survives a collection is long-lived (modules, definitions, GX, altair:
        # 400,000 objects, 0.5 s to walk): frozen, later collections walk only what later runs
        # made (docs/performance.md).
        gc.freeze()
        return failures

    # NOTE: the objects frozen after each run (execute) are thawed when the runs end, so a
    # process that calls this again (tests, notebooks) can still collect them.
    try:
        with progress("reference tables"):
            failures = execute("reference_job")
        if failures:
            return failures
        failures = [StepFailure("-", "landing", None, f"{path}: not a <YYYY-MM>.parquet or "
                                ".csv export; rename or remove it")
                    for path in list_unexpected_files(landing)]
        selected = [m for m in months if backfill is None or backfill[0] <= m <= backfill[1]]
        if not selected:
            return [StepFailure("-", "landing", None, f"no month of {landing} in {backfill}")]
        progress.update("months", inc=0, total=len(selected))
        for month in selected:
            began = time.monotonic()
            with progress(f"month {month}"):
                month_failures = execute("monthly_job", month)
            outcome = "FAILED" if month_failures else "ok"
            progress.update("months", total=len(selected),
                            message=f"{month} {outcome} in {time.monotonic() - began:.1f} s")
            if month_failures:
                _remove_month(defs, warehouse, month)
            failures += month_failures
        if failures:
            return failures
        if theme:
            config = {"ops": {"out_thematic_disproportionality": {"config": {"themes": [theme]}}}}
            with progress(f"theme {theme} and publication"):
                return execute("thematic_job", config=config)
        if not publish:
            keys = defs.resolve_job_def("statistics_job").asset_layer.executable_asset_keys
            with progress("statistics"):
                return execute("statistics_job", asset_selection=sorted(
                    (k for k in keys if k != dg.AssetKey("publication")), key=str))
        with progress("statistics and publication"):
            return execute("statistics_job")
    finally:
        gc.unfreeze()


def _remove_month(defs, warehouse: Path, month: str) -> None:
    """Remove every monthly file of a failed month: no partial output for that partition, and no
    output of an earlier run that the current landing zone no longer backs."""
    for key in defs.resolve_job_def("monthly_job").asset_layer.executable_asset_keys:
        warehouse.joinpath(*key.path, f"{month}.parquet").unlink(missing_ok=True)


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
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
