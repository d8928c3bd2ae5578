"""Schedules and sensors. All cron times are Europe/Amsterdam clock times.

- `landing_sensor`: a new month file in the landing zone registers the month as a partition and
  runs monthly_job for it; a changed CBS or team-areas file runs reference_job.
- `statistics_after_monthly`: every successful monthly_job run is followed by statistics_job.
- `monthly_schedule`: statistics and publication on the 5th of each month, 06:00.
- `thematic_schedule`: the thematic analyses each quarter (1 Jan/Apr/Jul/Oct, 07:00).
"""

from __future__ import annotations

import hashlib

import dagster as dg

from assets import frames
from assets.schema import TIMEZONE
from assets.partitions import MONTHS
from assets.resources import LandingZone
from pipelines.jobs import monthly_job, reference_job, statistics_job, thematic_job


def _stamp(paths) -> str:
    """Fingerprint of files by name, size and modification time (cheap: no reading)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in paths if p.exists()):
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


@dg.sensor(jobs=[monthly_job, reference_job], minimum_interval_seconds=300,
           default_status=dg.DefaultSensorStatus.STOPPED)
def landing_sensor(context: dg.SensorEvaluationContext, landing: LandingZone) -> dg.SensorResult:
    """Start runs for new or changed files in the landing zone."""
    root = landing.root
    requests = []
    reference = [frames.cbs_file(root, "persons"), frames.cbs_file(root, "population"),
                 frames.team_areas_file(root)]
    reference_stamp = _stamp(reference)
    requests.append(dg.RunRequest(run_key=f"reference-{reference_stamp}", job_name="reference_job"))
    known = set(context.instance.get_dynamic_partitions(MONTHS.name))
    months = frames.list_months(root)
    new = [m for m in months if m not in known]
    for month in months:
        files = [frames.month_file(root, t, month) for t in ("person", "plate")]
        # NOTE: the run key includes the files' stamp, so a re-delivered month runs again.
        requests.append(dg.RunRequest(run_key=f"{month}-{_stamp(files)}", partition_key=month,
                                      job_name="monthly_job"))
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[MONTHS.build_add_request(new)] if new else [],
    )


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS, monitored_jobs=[monthly_job],
                      request_job=statistics_job, default_status=dg.DefaultSensorStatus.STOPPED)
def statistics_after_monthly(context: dg.RunStatusSensorContext) -> dg.RunRequest:
    """Recompute the statistics after a month has been (re)loaded."""
    return dg.RunRequest(run_key=context.dagster_run.run_id)


monthly_schedule = dg.ScheduleDefinition(
    name="monthly_schedule", job=statistics_job, cron_schedule="0 6 5 * *",
    execution_timezone=TIMEZONE,
    description="Statistics and publication over every month loaded, on the 5th at 06:00.",
)
thematic_schedule = dg.ScheduleDefinition(
    name="thematic_schedule", job=thematic_job, cron_schedule="0 7 1 1,4,7,10 *",
    execution_timezone=TIMEZONE,
    description="Every theme of themes.yaml, quarterly on the 1st at 07:00.",
)

SCHEDULES = [monthly_schedule, thematic_schedule]
SENSORS = [landing_sensor, statistics_after_monthly]
