"""Scale benchmark (issues 7 and 15): `stopcheck run` end to end against a bare polars floor.

In one invocation, on one synthetic landing zone:

1. `stopcheck sample --out <dir>/landing --queries N` (timed apart; not part of any ratio);
2. the floor, each variant in its own subprocess: a polars streaming scan of every month of
   person queries, joined to CBS persons on the pseudonym, grouped by team × origin with the
   distinct persons and the queries; `string` joins on the 64-hex pseudonyms (the floor of the
   issue), `uint64` on the first 16 hex digits as UInt64 (the surrogate the pipeline uses);
   `copy`, for context, reads every column of every query month once and writes it once;
3. `stopcheck run` with STOPCHECK_LANDING_DIR, STOPCHECK_WAREHOUSE_DIR and DAGSTER_HOME in the
   benchmark folder;
4. the string floor once more (timings on a shared machine are noisy; the smaller one is used);
5. a table of wall time, peak RSS and ratio to the floor, the targets of the issue (50M person
   queries within 8× the floor at 50M and 12× at 5M, under 8 GB peak RSS), and the pipeline's time per step read back
   from the Dagster event log, with the peak RSS sampled while each step ran.

Peak RSS of a stage is the larger of the `ru_maxrss` of its process from `os.wait4` (the
kernel's high-water mark, exact for one process) and the largest RSS of its process tree sampled
every 0.2 s with psutil (the sum of the main process and the worker while months run side by
side, pipelines/runs.py; a lower bound). The per-step RSS is sampled the same way.

Usage::

    .venv/bin/python benchmarks/run_scale.py --queries 5000000 [--months 12] [--seed S] [--keep DIR]

Exits 0 whether or not the targets are met (it prints "target met" / "target missed"); exits 1
when a stage fails. Prints aggregates only: never a value from a person table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = REPO / ".venv" / "bin"
STOPCHECK = VENV_BIN / "stopcheck"
PYTHON = VENV_BIN / "python"

TARGET_RATIOS = {50_000_000: 8.0, 5_000_000: 12.0}
"""Issue 15: `stopcheck run` within 8x the floor at 50M person queries, 12x at 5M ..."""
TARGET_PEAK_GB = 8.0
"""... and under 8 GB peak RSS, on 2 cores / 24 GB."""


def target_ratio(queries: int) -> tuple[float, int]:
    """The ratio target that applies to a run of `queries` and the scale it was set for: the
    target of the largest scale not above the run (the 5M target below 5M, indicative only)."""
    scale = max((s for s in TARGET_RATIOS if s <= queries), default=min(TARGET_RATIOS))
    return TARGET_RATIOS[scale], scale


FLOOR_VARIANTS = ("string", "uint64", "copy")
RSS_SAMPLE_SECONDS = 0.2
GB = 1024**3


# ---------------------------------------------------------------------------------------------
# The floor (runs in a child process: `run_scale.py _floor VARIANT LANDING`)
# ---------------------------------------------------------------------------------------------


def run_floor(variant: str, landing: Path) -> dict:
    """Run the floor query once; return its row and group counts and its query time.

    One row of the result is a team × origin with `person_count` (distinct persons) and
    `query_count`. Only counts of the result leave this function.
    """
    import polars as pl

    if variant == "copy":
        return _run_copy(landing)
    queries = pl.scan_parquet(landing / "meos" / "person_queries" / "*.parquet").select(
        "team_code", "subject_pseudonym")
    persons = pl.scan_parquet(landing / "cbs" / "persons.parquet").select("pseudonym", "origin")
    if variant == "string":
        joined = queries.join(persons, left_on="subject_pseudonym", right_on="pseudonym")
        person = pl.col("subject_pseudonym")
    elif variant == "uint64":
        # NOTE: the pipeline's surrogate (assets.linkage.key_expr): the first 16 hex digits.
        def key(column: str) -> pl.Expr:
            return pl.col(column).str.slice(0, 16).str.to_integer(
                base=16, dtype=pl.UInt64, strict=False)

        joined = queries.select("team_code", person_key=key("subject_pseudonym")).join(
            persons.select("origin", person_key=key("pseudonym")), on="person_key")
        person = pl.col("person_key")
    else:
        raise ValueError(f"unknown floor variant {variant!r}")
    start = time.perf_counter()
    result = (
        joined.group_by("team_code", "origin")
        .agg(person_count=person.n_unique(), query_count=pl.len())
        .collect(engine="streaming")
    )
    seconds = time.perf_counter() - start
    return {"variant": variant, "query_seconds": seconds, "groups": result.height,
            "queries_joined": int(result["query_count"].sum())}


def _run_copy(landing: Path) -> dict:
    """Read every column of every person- and plate-query month once and write it once.

    NOTE: context, not the issue's floor: the least input/output of any pipeline that keeps a
    copy of what it validated (the warehouse holds the raw and the core copy of each month).
    Written as the warehouse writes (zstd level 1) to a folder that is removed afterwards.
    """
    import polars as pl

    rows = 0
    with tempfile.TemporaryDirectory(dir=landing.parent) as out:
        start = time.perf_counter()
        for query_type in ("person", "plate"):
            for path in sorted((landing / "meos" / f"{query_type}_queries").glob("*.parquet")):
                frame = pl.read_parquet(path)
                frame.write_parquet(Path(out) / f"{query_type}_{path.name}", compression="zstd",
                                    compression_level=1)
                rows += frame.height
                del frame
        seconds = time.perf_counter() - start
    return {"variant": "copy", "query_seconds": seconds, "groups": 0, "queries_joined": rows}


# ---------------------------------------------------------------------------------------------
# Measuring a child process: wall time, exact peak RSS, sampled RSS timeline
# ---------------------------------------------------------------------------------------------


@dataclass
class StageResult:
    """One measured child process: wall time, peak RSS (ru_maxrss) and its RSS samples."""

    name: str
    command: list[str]
    wall_seconds: float
    peak_rss_bytes: int
    returncode: int
    started_at: float
    ended_at: float = 0.0
    """Unix times (the event log's clock); wall_seconds is monotonic (see print_report)."""
    stdout: str = ""
    stderr_tail: str = ""
    rss_samples: list[tuple[float, int]] = field(default_factory=list)
    """(unix time, RSS of the process tree in bytes), every RSS_SAMPLE_SECONDS."""

    @property
    def peak_rss_gb(self) -> float:
        return self.peak_rss_bytes / GB


def _sample_tree_rss(pid: int, samples: list[tuple[float, int]], stop: threading.Event,
                     limit_bytes: int | None, killed: list[int]) -> None:
    try:
        import psutil
    except ImportError:  # NOTE: the timeline is optional; the exact peak comes from wait4.
        return
    try:
        root = psutil.Process(pid)
    except psutil.Error:
        return
    while not stop.is_set():
        try:
            children = root.children(recursive=True)
            rss = root.memory_info().rss + sum(c.memory_info().rss for c in children)
        except psutil.Error:
            break
        samples.append((time.time(), rss))
        if limit_bytes is not None and rss > limit_bytes:
            # NOTE: on a shared machine a run heading for the OOM killer is stopped first (the
            # kernel might pick someone else's process); only this child tree is killed.
            killed.append(rss)
            for process in [*children, root]:
                try:
                    process.kill()
                except psutil.Error:
                    pass
            break
        stop.wait(RSS_SAMPLE_SECONDS)


def measure_process(name: str, command: list[str], env: dict[str, str] | None = None,
                    log_dir: Path | None = None, max_rss_gb: float | None = None) -> StageResult:
    """Run `command`, return its wall time and peak RSS (the kernel's ru_maxrss via wait4, or
    the largest sampled RSS of the process tree when that is larger: two processes at once).

    stdout is kept; stderr goes to `<log_dir>/<name>.stderr` (its tail is kept for failures).
    With `max_rss_gb`, the process tree is killed when its sampled RSS exceeds that.
    """
    limit = int(max_rss_gb * GB) if max_rss_gb else None
    killed: list[int] = []
    stderr_path = (log_dir or Path(tempfile.gettempdir())) / f"{name}.stderr"
    with open(stderr_path, "wb") as stderr:
        started_at = time.time()
        start = time.perf_counter()
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=stderr)
        samples: list[tuple[float, int]] = []
        stop = threading.Event()
        sampler = threading.Thread(target=_sample_tree_rss,
                                   args=(proc.pid, samples, stop, limit, killed), daemon=True)
        sampler.start()
        chunks = []
        # NOTE: read stdout to the end before waiting, or a chatty child blocks on a full pipe.
        for chunk in iter(lambda: proc.stdout.read(65536), b""):
            chunks.append(chunk)
        # NOTE: os.wait4 returns the child's own rusage; ru_maxrss is its peak RSS in KiB on
        # Linux (including any children it waited for), exact, unlike sampling.
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        ended_at = time.time()
        proc.returncode = os.waitstatus_to_exitcode(status)
        stop.set()
        sampler.join()
        proc.stdout.close()
    stderr_text = stderr_path.read_text(errors="replace")
    if killed:
        stderr_text += (f"\nrun_scale.py: killed at {killed[0] / GB:.2f} GB RSS "
                        f"(--max-rss-gb {max_rss_gb:g})")
    return StageResult(
        name=name, command=[str(c) for c in command], wall_seconds=wall,
        peak_rss_bytes=max([usage.ru_maxrss * 1024, *(rss for _, rss in samples)]),
        returncode=proc.returncode, started_at=started_at,
        ended_at=ended_at,
        stdout=b"".join(chunks).decode(errors="replace"),
        stderr_tail="\n".join(stderr_text.splitlines()[-15:]), rss_samples=samples,
    )


# ---------------------------------------------------------------------------------------------
# The pipeline's own profile, from the Dagster event log
# ---------------------------------------------------------------------------------------------


@dataclass
class StepTiming:
    """One step (asset, multi-asset or check) summed over the runs (partitions) it ran in."""

    job: str
    step: str
    runs: int = 0
    total_seconds: float = 0.0
    load_seconds: float = 0.0
    """STEP_START to the last STEP_INPUT: reading the inputs through the IO manager."""
    store_seconds: float = 0.0
    """STEP_OUTPUT to HANDLED_OUTPUT, summed over outputs: writing Parquet."""
    peak_rss_bytes: int = 0
    """Largest sampled RSS while the step ran (0 when psutil is absent)."""

    @property
    def compute_seconds(self) -> float:
        return self.total_seconds - self.load_seconds - self.store_seconds


@dataclass
class RunTiming:
    """One Dagster run: its wall time, the part inside steps, and the RSS sampled during it."""

    job: str
    partition: str | None
    seconds: float
    step_seconds: float
    rss_start_bytes: int = 0
    """First RSS sample in the run: what the process still holds from earlier runs."""
    rss_peak_bytes: int = 0
    started_at: float = 0.0
    """Wall-clock time (time.time) of the run's first event."""


def seconds_in_runs(runs: list[RunTiming]) -> float:
    """Wall time during which at least one run was going: the length of the union of the runs'
    intervals (the monthly runs overlap, two processes working side by side)."""
    covered, reach = 0.0, float("-inf")
    for run in sorted(runs, key=lambda r: r.started_at):
        end = run.started_at + run.seconds
        covered += max(0.0, end - max(run.started_at, reach))
        reach = max(reach, end)
    return covered


def read_step_timings(dagster_home: Path, rss_samples: list[tuple[float, int]]
                      ) -> tuple[list[StepTiming], list[RunTiming]]:
    """Per-step and per-run wall times of every run in the DAGSTER_HOME instance."""
    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    try:
        import dagster as dg

        with dg.DagsterInstance.get() as instance:
            runs = list(reversed(instance.get_runs()))
            logs = {run.run_id: instance.all_logs(run.run_id) for run in runs}
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous

    steps: dict[tuple[str, str], StepTiming] = {}
    run_timings = []
    for run in runs:
        records = logs[run.run_id]
        per_step: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for record in records:
            event = record.dagster_event
            if event is None or record.step_key is None:
                continue
            per_step[record.step_key][event.event_type_value].append(record.timestamp)
        run_step_seconds = 0.0
        for step_key, events in per_step.items():
            if not events.get("STEP_START"):
                continue
            start = min(events["STEP_START"])
            end = max(events.get("STEP_SUCCESS") or events.get("STEP_FAILURE")
                      or [max(max(v) for v in events.values())])
            inputs = events.get("STEP_INPUT") or [start]
            outputs = sorted(events.get("STEP_OUTPUT", []))
            handled = sorted(events.get("HANDLED_OUTPUT", []))
            # NOTE: a check's result is a STEP_OUTPUT without a HANDLED_OUTPUT; pair each handled
            # output with the latest STEP_OUTPUT before it.
            store = 0.0
            for done in handled:
                before = [t for t in outputs if t <= done]
                if before:
                    store += done - before[-1]
            timing = steps.setdefault((run.job_name, step_key), StepTiming(run.job_name, step_key))
            timing.runs += 1
            timing.total_seconds += end - start
            timing.load_seconds += max(inputs) - start
            timing.store_seconds += store
            inside = [rss for t, rss in rss_samples if start <= t <= end]
            timing.peak_rss_bytes = max([timing.peak_rss_bytes, *inside])
            run_step_seconds += end - start
        stamps = [r.timestamp for r in records]
        inside = [rss for t, rss in rss_samples if stamps and min(stamps) <= t <= max(stamps)]
        run_timings.append(RunTiming(run.job_name, run.tags.get("dagster/partition"),
                                     max(stamps) - min(stamps) if stamps else 0.0,
                                     run_step_seconds, inside[0] if inside else 0,
                                     max(inside, default=0), min(stamps, default=0.0)))
    order = {"reference_job": 0, "monthly_job": 1, "statistics_job": 2, "thematic_job": 3}
    ordered = sorted(steps.values(), key=lambda s: (order.get(s.job, 9), -s.total_seconds))
    return ordered, run_timings


# ---------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------


def describe_machine() -> dict:
    """CPU model, core count, memory, load, git commit and date of this measurement."""
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_gb = None
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gb = int(line.split()[1]) * 1024 / GB
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "git_commit": commit + (" (+ uncommitted changes)" if dirty else ""),
        "cpu_model": model,
        "cpus": os.cpu_count(),
        "memory_gb": round(memory_gb, 1) if memory_gb else None,
        "python": platform.python_version(),
        "load_average_start": os.getloadavg(),
    }


def _fmt_gb(n_bytes: int) -> str:
    # NOTE: 0 means no RSS sample fell inside the step (shorter than the sampling interval).
    return f"{n_bytes / GB:.2f}" if n_bytes else "-"


def print_report(queries: int, machine: dict, sample: StageResult, floors: list[StageResult],
                 pipeline: StageResult, steps: list[StepTiming], runs: list[RunTiming],
                 floor_details: dict[str, list[dict]]) -> dict:
    """Print the results table, the targets and the per-step profile; return them as a dict."""
    string_floors = [f for f in floors if f.name.startswith("floor_string")]
    floor = min(string_floors, key=lambda f: f.wall_seconds)
    print()
    print(f"person queries requested: {queries:,}  ({machine['date']}, commit {machine['git_commit']})")
    print(f"machine: {machine['cpus']} cpus, {machine['memory_gb']} GB, {machine['cpu_model']}; "
          f"load average at start {tuple(round(x, 2) for x in machine['load_average_start'])}, "
          f"at end {tuple(round(x, 2) for x in os.getloadavg())}")
    for variant, details in floor_details.items():
        joined = {d["queries_joined"] for d in details}
        if variant == "copy":
            print(f"floor copy: {sorted(joined)} person and plate query rows read and written once "
                  "(context, not the ratio base); time in the child "
                  + ", ".join(f"{d['query_seconds']:.2f} s" for d in details))
            continue
        print(f"floor {variant}: {sorted(joined)} person queries joined to persons, "
              f"{details[0]['groups']} team × origin groups; query time in the child "
              + ", ".join(f"{d['query_seconds']:.2f} s" for d in details))
    print()
    header = f"{'stage':<34}{'wall s':>10}{'peak RSS GB':>13}{'ratio to floor':>16}"
    print(header)
    print("-" * len(header))
    rows = [(sample, None)] + [(f, f.wall_seconds / floor.wall_seconds) for f in floors] + [
        (pipeline, pipeline.wall_seconds / floor.wall_seconds)]
    for stage, ratio in rows:
        label = stage.name + (" (ratio base)" if stage is floor else "")
        ratio_text = f"{ratio:.2f}x" if ratio is not None else "-"
        print(f"{label:<34}{stage.wall_seconds:>10.1f}{_fmt_gb(stage.peak_rss_bytes):>13}"
              f"{ratio_text:>16}")
    ratio = pipeline.wall_seconds / floor.wall_seconds
    print()
    target, scale = target_ratio(queries)
    scale_note = ("" if queries >= scale else
                  f" (the targets are set for {scale:,} person queries; this run has "
                  f"{queries:,}, so this is indicative only)")
    finished = pipeline.returncode == 0
    ratio_ok = finished and ratio <= target
    rss_ok = finished and pipeline.peak_rss_gb < TARGET_PEAK_GB
    if not finished:
        print(f"target missed: stopcheck run did not finish (exit {pipeline.returncode}); the "
              "figures below cover the part that ran")
    print(f"{'target met' if ratio_ok else 'target missed'}: wall time {ratio:.2f}x the floor "
          f"(target <= {target:g}x at {scale:,}){scale_note}")
    print(f"{'target met' if rss_ok else 'target missed'}: peak RSS {pipeline.peak_rss_gb:.2f} GB "
          f"(target < {TARGET_PEAK_GB:g} GB){scale_note}")

    print()
    print("stopcheck run, where the time goes (Dagster event log; load = reading inputs, "
          "store = writing outputs, compute = the rest of the step):")
    by_job: dict[str, list[RunTiming]] = defaultdict(list)
    for run in runs:
        by_job[run.job].append(run)
    for job, job_runs in by_job.items():
        seconds = sum(r.seconds for r in job_runs)
        overhead = seconds - sum(r.step_seconds for r in job_runs)
        print(f"  {job:<20} {len(job_runs):>3} run(s) {seconds:>9.1f} s  "
              f"(Dagster overhead outside steps {overhead:.1f} s)")
    # NOTE: event-log times are wall-clock (time.time), so the time outside runs is taken on
    # the same clock. On this VM the wall clock has been seen to gain ~3-4% on the monotonic
    # clock over minutes (it is stepped); stage wall times above are monotonic.
    realtime = pipeline.ended_at - pipeline.started_at
    outside = realtime - seconds_in_runs(runs)
    print(f"  {'process start-up, definitions, CLI':<33} {outside:>9.1f} s  "
          "(wall time outside any run)")
    if abs(realtime - pipeline.wall_seconds) > 0.02 * pipeline.wall_seconds:
        print(f"  note: the wall clock measured {realtime:.1f} s for stopcheck run, the monotonic "
              f"clock {pipeline.wall_seconds:.1f} s (the VM's clock is being adjusted)")
    print()
    print("  RSS of the stopcheck process per run (sampled; 'start' = held over from earlier runs):")
    for run in runs:
        label = f"{run.job} {run.partition or ''}".strip()
        print(f"    {label:<30} {run.seconds:>7.1f} s   start {_fmt_gb(run.rss_start_bytes):>5} GB"
              f"   peak {_fmt_gb(run.rss_peak_bytes):>5} GB")
    print()
    header = (f"  {'job':<15}{'step':<34}{'runs':>5}{'total s':>9}{'load s':>8}{'compute s':>10}"
              f"{'store s':>9}{'% wall':>8}{'peak RSS GB':>12}")
    print(header)
    for s in steps:
        share = 100 * s.total_seconds / pipeline.wall_seconds
        print(f"  {s.job:<15}{s.step:<34}{s.runs:>5}{s.total_seconds:>9.1f}{s.load_seconds:>8.1f}"
              f"{s.compute_seconds:>10.1f}{s.store_seconds:>9.1f}{share:>7.1f}%"
              f"{_fmt_gb(s.peak_rss_bytes):>12}")
    return {
        "queries": queries,
        "machine": {**machine, "load_average_end": os.getloadavg()},
        "stages": [{k: v for k, v in asdict(s).items() if k not in ("rss_samples", "stdout")}
                   for s in [sample, *floors, pipeline]],
        "floor_base": floor.name,
        "floor_details": floor_details,
        "ratio_to_floor": ratio,
        "target_ratio_met": ratio_ok,
        "target_peak_rss_met": rss_ok,
        "runs": [asdict(r) for r in runs],
        "pipeline_rss_timeline": [(round(t - pipeline.started_at, 2), rss)
                                  for t, rss in pipeline.rss_samples],
        "steps": [{**asdict(s), "compute_seconds": s.compute_seconds} for s in steps],
    }


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def _floor_stage(name: str, variant: str, landing: Path, work: Path
                 ) -> tuple[StageResult, dict]:
    stage = measure_process(name, [str(PYTHON), __file__, "_floor", variant, str(landing)],
                            log_dir=work)
    if stage.returncode != 0:
        raise SystemExit(f"{name} failed (exit {stage.returncode}):\n{stage.stderr_tail}")
    details = json.loads(stage.stdout.strip().splitlines()[-1])
    print(f"  {name}: {stage.wall_seconds:.1f} s wall, {stage.peak_rss_gb:.2f} GB peak RSS",
          flush=True)
    return stage, details


def run_benchmark(queries: int, months: int, seed: int | None, work: Path,
                  reuse_landing: bool, max_rss_gb: float | None = None) -> int:
    machine = describe_machine()
    landing, warehouse, home = work / "landing", work / "warehouse", work / "dagster_home"
    print(f"benchmark folder: {work}", flush=True)

    sample_cmd = [str(STOPCHECK), "sample", "--out", str(landing), "--queries", str(queries),
                  "--months", str(months)] + (["--seed", str(seed)] if seed is not None else [])
    if reuse_landing and (landing / "truth.json").exists():
        truth = json.loads((landing / "truth.json").read_text())
        spec = truth["spec"]
        if (spec["person_queries"], spec["months"]) != (queries, months) or (
                seed is not None and spec["seed"] != seed):
            raise SystemExit(f"{landing} holds another sample; drop --reuse-landing")
        print("reusing the landing zone already in the folder (sample not timed)", flush=True)
        sample = StageResult("stopcheck sample (reused)", sample_cmd, 0.0, 0, 0, time.time())
    else:
        shutil.rmtree(landing, ignore_errors=True)
        print(f"generating {queries:,} person queries over {months} months ...", flush=True)
        sample = measure_process("stopcheck sample", sample_cmd, log_dir=work)
        if sample.returncode != 0:
            print(f"stopcheck sample failed (exit {sample.returncode}):\n{sample.stderr_tail}")
            return 1
        print(f"  {sample.stdout.strip()}\n  {sample.wall_seconds:.1f} s", flush=True)

    print("floor (polars streaming: scan + join to persons + group-by with distinct persons) ...",
          flush=True)
    floors, floor_details = [], defaultdict(list)
    for variant in FLOOR_VARIANTS:
        stage, details = _floor_stage(f"floor_{variant}", variant, landing, work)
        floors.append(stage)
        floor_details[variant].append(details)

    shutil.rmtree(warehouse, ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    # NOTE: an instance of our own in the benchmark folder; telemetry off (no network here).
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "STOPCHECK_LANDING_DIR": str(landing),
           "STOPCHECK_WAREHOUSE_DIR": str(warehouse), "DAGSTER_HOME": str(home)}
    print("stopcheck run ...", flush=True)
    pipeline = measure_process("stopcheck run", [str(STOPCHECK), "run"], env=env, log_dir=work,
                               max_rss_gb=max_rss_gb)
    print(f"  {pipeline.wall_seconds:.1f} s wall, {pipeline.peak_rss_gb:.2f} GB peak RSS, "
          f"exit {pipeline.returncode}", flush=True)

    # NOTE: the floor again after the pipeline: on a shared machine one measurement can be
    # slowed by other work; the ratio uses the faster of the two (a conservative ratio).
    stage, details = _floor_stage("floor_string (repeat)", "string", landing, work)
    floors.append(stage)
    floor_details["string"].append(details)

    steps, runs = read_step_timings(home, pipeline.rss_samples)
    result = print_report(queries, machine, sample, floors, pipeline, steps, runs,
                          dict(floor_details))
    result["commands"] = {"sample": sample_cmd, "run": [str(STOPCHECK), "run"],
                          "benchmark": [sys.executable, *sys.argv]}
    out = work / "scale_result.json"
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nresults: {out}")
    if pipeline.returncode != 0:
        print(f"\nstopcheck run FAILED (exit {pipeline.returncode}); stderr tail:\n"
              f"{pipeline.stderr_tail}")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_floor"]:
        print(json.dumps(run_floor(argv[1], Path(argv[2]))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, required=True,
                        help="expected person queries over all months (plate queries scale along)")
    parser.add_argument("--months", type=int, default=12, help="export months (default 12)")
    parser.add_argument("--seed", type=int, help="random seed of the sample (default: stopcheck's)")
    parser.add_argument("--keep", type=Path,
                        help="work in this folder and keep it (landing, warehouse, Dagster "
                             "instance, scale_result.json); default: a temporary folder, removed")
    parser.add_argument("--reuse-landing", action="store_true",
                        help="with --keep: reuse a landing zone of the same spec already there")
    parser.add_argument("--max-rss-gb", type=float,
                        help="kill `stopcheck run` when its sampled RSS exceeds this many GB "
                             "(protects a shared machine from the OOM killer); default: no limit")
    args = parser.parse_args(argv)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        return run_benchmark(args.queries, args.months, args.seed, args.keep.resolve(),
                             args.reuse_landing, args.max_rss_gb)
    work = Path(tempfile.mkdtemp(prefix="stopcheck_scale_"))
    try:
        return run_benchmark(args.queries, args.months, args.seed, work, False, args.max_rss_gb)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
