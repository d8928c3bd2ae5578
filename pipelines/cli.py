"""`stopcheck` console script: run the pipeline in one process, or write a synthetic landing zone.

`stopcheck run` materialises every asset for every month of the landing zone: the reference job
once, the monthly job per month (a bad month fails alone and the others keep their progress),
then the statistics job when every month succeeded. It exits non-zero naming each failed asset
and partition. Messages are our own and aggregate: they never hold a value from a person table.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from assets.provenance import PROJECT_ROOT


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


def ensure_dagster_home() -> Path:
    """DAGSTER_HOME, defaulting to .dagster/ in the repository (DESIGN.md §3)."""
    home = Path(os.environ.get("DAGSTER_HOME") or PROJECT_ROOT / ".dagster").resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
"""Console logging of in-process runs: warnings and errors only (the event log keeps all)."""


def run_pipeline(landing: Path, warehouse: Path, instance, *, theme: str | None = None,
                 backfill: tuple[str, str] | None = None, themes_file: str = "",
                 echo=print) -> list[StepFailure]:
    """Materialise every asset for every month of `landing` into `warehouse`; return failures.

    With `backfill` (first, last month), only those months are (re)loaded — a backfill — and the
    statistics then cover every month materialised. With `theme`, the last step computes (and
    publishes) that theme only: the thematic job.
    """
    from assets.frames import list_months, list_unexpected_files
    from pipelines.definitions import build_definitions
    from assets.partitions import MONTHS

    defs = build_definitions(str(landing), str(warehouse), themes_file)
    months = list_months(landing)
    if not months:
        return [StepFailure("-", "landing", None, f"{landing}: no monthly query files found")]
    known = set(instance.get_dynamic_partitions(MONTHS.name))
    instance.add_dynamic_partitions(MONTHS.name, [m for m in months if m not in known])

    def execute(job_name: str, partition: str | None = None, config: dict | None = None):
        job = defs.resolve_job_def(job_name)
        result = job.execute_in_process(
            instance=instance, partition_key=partition, run_config={**QUIET, **(config or {})},
            raise_on_error=False)
        failures = _failures(result, job_name, partition)
        # NOTE: the run result holds every step's frames in reference cycles that Python rarely
        # collects; without this each month's frames stay resident (docs/performance.md, fix 1).
        del result
        gc.collect()
        return failures

    failures = execute("reference_job")
    if failures:
        return failures
    failures = [StepFailure("-", "landing", None, f"{path}: not a <YYYY-MM>.parquet or .csv "
                            "export; rename or remove it") for path in list_unexpected_files(landing)]
    selected = [m for m in months if backfill is None or backfill[0] <= m <= backfill[1]]
    if not selected:
        return [StepFailure("-", "landing", None, f"no month of {landing} in {backfill}")]
    for month in selected:
        month_failures = execute("monthly_job", month)
        echo(f"  {month}: {'FAILED' if month_failures else 'ok'}")
        if month_failures:
            _remove_month(defs, warehouse, month)
        failures += month_failures
    if failures:
        echo("statistics skipped: they need every month of the landing zone")
        return failures
    if theme:
        config = {"ops": {"out_thematic_disproportionality": {"config": {"themes": [theme]}}}}
        return execute("thematic_job", config=config)
    return execute("statistics_job")


def _remove_month(defs, warehouse: Path, month: str) -> None:
    """Remove every monthly file of a failed month: no partial output for that partition, and no
    output of an earlier run that the current landing zone no longer backs."""
    for key in defs.resolve_job_def("monthly_job").asset_layer.executable_asset_keys:
        warehouse.joinpath(*key.path, f"{month}.parquet").unlink(missing_ok=True)


def _cmd_run(args: argparse.Namespace) -> int:
    import dagster as dg

    from assets.resources import DEFAULT_LANDING, DEFAULT_WAREHOUSE, resolve_dir

    home = ensure_dagster_home()
    landing = resolve_dir("", "STOPCHECK_LANDING_DIR", DEFAULT_LANDING)
    warehouse = resolve_dir("", "STOPCHECK_WAREHOUSE_DIR", DEFAULT_WAREHOUSE)
    if landing == DEFAULT_LANDING.resolve() and not (landing / "meos").exists():
        from assets.synthetic import generate_sample

        print(f"built-in sample absent: generating it in {landing}")
        generate_sample(landing)
    print(f"landing zone: {landing}\nwarehouse:    {warehouse}\nDAGSTER_HOME: {home}")
    (home / "dagster.yaml").touch()
    with dg.DagsterInstance.get() as instance:
        failures = run_pipeline(landing, warehouse, instance, theme=args.theme,
                                backfill=args.backfill)
    if failures:
        print(f"\nstopcheck run FAILED ({len(failures)} failed step(s)):", file=sys.stderr)
        for failure in failures:
            print(f"  - {failure}", file=sys.stderr)
        return 1
    print(f"\ndone. outputs: {warehouse}")
    report = warehouse / "publication" / "thematic_report.html"
    if report.exists():
        print(f"report:  {report}")
    return 0


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
    run = commands.add_parser("run", help="materialise every asset for every month")
    run.add_argument("--theme", help="compute and publish only this theme of themes.yaml")
    run.add_argument("--backfill", nargs=2, metavar=("FIRST", "LAST"),
                     help="reload only the months FIRST..LAST (YYYY-MM), then the statistics")
    run.set_defaults(func=_cmd_run)
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
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
