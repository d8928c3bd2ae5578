"""The production instance of docs/production/dagster.yaml keeps runs and events in PostgreSQL.

A throw-away PostgreSQL cluster is created with ``initdb`` in a temporary directory, started on
a free port bound to 127.0.0.1 and always stopped and removed afterwards. The test then loads
the shipped docs/production/dagster.yaml *unchanged* as ``$DAGSTER_HOME/dagster.yaml`` (every
connection setting in it comes from environment variables), runs the project's own Definitions
over one month of the synthetic sample (reference tables, the month, statistics and
publication, as `stopcheck run` does) and checks, through Dagster and through SQL, that run
storage, event-log storage and partition storage live in PostgreSQL.

Skipped, with the reason, when no PostgreSQL server binaries exist on a developer machine;
failed when they are missing under CI (``CI`` set): CI installs them with .ci/postgres.sh.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl
import psycopg2
import pytest
import yaml

from assets.synthetic import SampleSpec, generate_sample
from pipelines.cli import run_pipeline

PRODUCTION_YAML = Path(__file__).resolve().parents[2] / "docs" / "production" / "dagster.yaml"
SERVER_USER = "postgres"
"""The account that runs initdb/pg_ctl when the tests run as root (PostgreSQL refuses root)."""


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int
    username: str
    password: str
    db_name: str

    def connect(self):  # -> psycopg2 connection
        return psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.username,
            password=self.password,
            dbname=self.db_name,
        )


def _version_key(bin_dir: str) -> tuple[int, str]:
    version = Path(bin_dir).parent.name
    return (int(version) if version.isdigit() else -1, version)


def find_server_bin_dir() -> Path | None:
    """The bin directory holding initdb and pg_ctl: newest Debian cluster version, else PATH."""
    debian = [
        directory
        for directory in glob.glob("/usr/lib/postgresql/*/bin")
        if os.access(os.path.join(directory, "initdb"), os.X_OK)
        and os.access(os.path.join(directory, "pg_ctl"), os.X_OK)
    ]
    if debian:
        return Path(max(debian, key=_version_key))
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return Path(initdb).resolve().parent
    return None


def _skip_or_fail(reason: str) -> None:
    # NOTE: a developer without PostgreSQL may skip; CI must not go green without the test.
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: run .ci/postgres.sh before the tests)")
    pytest.skip(reason)


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run(command: list[str], *, as_user: pwd.struct_passwd | None, cwd: Path, log: Path) -> None:
    """Run a PostgreSQL program (as ``as_user`` when given), output to ``log``; raise on failure."""
    # NOTE: output goes to a file, not a pipe: `pg_ctl start` leaves the server running with
    # the inherited descriptors, and a pipe would keep subprocess.run waiting for EOF.
    with log.open("ab") as out:
        kwargs: dict = {"cwd": cwd, "stdout": out, "stderr": subprocess.STDOUT, "check": False}
        if as_user is not None:
            kwargs.update(user=as_user.pw_uid, group=as_user.pw_gid, extra_groups=[])
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C",
            "LC_ALL": "C",
        }
        if as_user is not None:
            env["HOME"] = as_user.pw_dir
        completed = subprocess.run(command, env=env, timeout=120, **kwargs)
    if completed.returncode != 0:
        server_log = log.with_name("server.log")
        server_text = server_log.read_text(errors="replace") if server_log.exists() else ""
        raise RuntimeError(
            f"{Path(command[0]).name} failed with exit code {completed.returncode}:\n"
            + log.read_text(errors="replace")[-3000:]
            + "\n--- server log ---\n"
            + server_text[-3000:]
        )


@pytest.fixture(scope="module")
def pg_server() -> Iterator[PgServer]:
    """A PostgreSQL server in a temporary directory, with one database; always stopped."""
    bin_dir = find_server_bin_dir()
    if bin_dir is None:
        _skip_or_fail("no PostgreSQL server binaries (initdb, pg_ctl) found")
    as_user: pwd.struct_passwd | None = None
    if os.geteuid() == 0:
        try:
            as_user = pwd.getpwnam(SERVER_USER)
        except KeyError:
            _skip_or_fail(f"running as root and no '{SERVER_USER}' account to run PostgreSQL")

    # NOTE: not pytest's tmp_path: its parent directories are private to the current user,
    # and the server account must be able to reach its data directory.
    root = Path(tempfile.mkdtemp(prefix="stopcheck-pg-"))
    # NOTE: two logs: programs' output goes to a file this process opens; the server writes
    # its own log as the server account.
    data_dir, log, server_log = root / "data", root / "commands.log", root / "server.log"
    username, password, db_name = "stopcheck", secrets.token_hex(16), "stopcheck_dagster"
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n", encoding="utf-8")
    pwfile.chmod(0o600)
    if as_user is not None:
        for path in (root, pwfile):
            os.chown(path, as_user.pw_uid, as_user.pw_gid)

    pg_ctl = str(bin_dir / "pg_ctl")
    started = False
    try:
        _run(
            [
                str(bin_dir / "initdb"),
                "--pgdata", str(data_dir),
                "--username", username,
                "--pwfile", str(pwfile),
                "--auth", "scram-sha-256",
                "--encoding", "UTF8",
                "--locale", "C",
                "--no-sync",
            ],
            as_user=as_user, cwd=root, log=log,
        )  # fmt: skip
        port = _free_port()
        server_options = (
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 "
            # a throw-away cluster: durability off for speed
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        started = True  # from here on, always try to stop
        _run(
            [pg_ctl, "--pgdata", str(data_dir), "--log", str(server_log), "--wait", "--timeout", "60",
             "-o", server_options, "start"],
            as_user=as_user, cwd=root, log=log,
        )  # fmt: skip
        admin = psycopg2.connect(
            host="127.0.0.1", port=port, user=username, password=password, dbname="postgres"
        )
        try:
            admin.autocommit = True
            with admin.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {db_name}")
        finally:
            admin.close()
        yield PgServer("127.0.0.1", port, username, password, db_name)
    finally:
        if started:
            for mode in ("fast", "immediate"):
                try:
                    _run(
                        [pg_ctl, "--pgdata", str(data_dir), "--mode", mode, "--wait", "stop"],
                        as_user=as_user, cwd=root, log=log,
                    )  # fmt: skip
                    break
                except (RuntimeError, subprocess.TimeoutExpired):
                    continue
        shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------------------------------------

ONE_MONTH = SampleSpec(seed=11, months=1, person_queries=12_000, plate_queries=8_000)
"""One month of the synthetic sample, the size of a month of tests/conftest.py's SMALL."""


def test_production_instance_keeps_the_pipelines_runs_and_events_in_postgres(
    pg_server: PgServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copyfile(PRODUCTION_YAML, dagster_home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setenv("DAGSTER_PG_HOST", pg_server.host)
    monkeypatch.setenv("DAGSTER_PG_PORT", str(pg_server.port))
    monkeypatch.setenv("DAGSTER_PG_DB", pg_server.db_name)
    monkeypatch.setenv("DAGSTER_PG_USERNAME", pg_server.username)
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", pg_server.password)
    monkeypatch.setenv("DAGSTER_COMPUTE_LOG_DIR", str(tmp_path / "compute_logs"))
    production = yaml.safe_load(PRODUCTION_YAML.read_text(encoding="utf-8"))
    landing, warehouse = tmp_path / "landing", tmp_path / "warehouse"
    [month] = generate_sample(landing, ONE_MONTH)["months"]

    with dg.DagsterInstance.get() as instance:
        # the instance is the one the file describes
        storage = instance.get_ref().storage_data
        assert (storage.module_name, storage.class_name) == ("dagster_postgres", "DagsterPostgresStorage")
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert isinstance(instance.run_coordinator, dg.QueuedRunCoordinator)
        assert isinstance(instance.run_launcher, dg.DefaultRunLauncher)
        assert type(instance.compute_log_manager).__name__ == "LocalComputeLogManager"
        assert instance.telemetry_enabled is False
        run_queue = instance.get_concurrency_config().run_queue_config
        assert run_queue is not None
        limits = production["concurrency"]["runs"]
        assert run_queue.max_concurrent_runs == limits["max_concurrent_runs"]
        assert list(run_queue.tag_concurrency_limits) == limits["tag_concurrency_limits"]

        # the project's own Definitions: reference tables, one month, statistics, publication
        assert run_pipeline(landing, warehouse, instance) == []

        runs = instance.get_runs()
        assert sorted(run.job_name for run in runs) == ["monthly_job", "reference_job",
                                                        "statistics_job"]
        assert {run.status for run in runs} == {dg.DagsterRunStatus.SUCCESS}
        assert instance.get_dynamic_partitions("month") == [month]
        monthly = instance.fetch_materializations(dg.AssetKey("core_person_queries"),
                                                  limit=10).records
        assert [record.partition_key for record in monthly] == [month]
        latest = instance.get_latest_materialization_event(
            dg.AssetKey("out_team_disproportionality"))
        assert latest is not None and latest.asset_materialization is not None
        rows = pl.read_parquet(warehouse / "out_team_disproportionality.parquet").height
        assert latest.asset_materialization.metadata["dagster/row_count"].value == rows > 0
        run_ids = {run.run_id for run in runs}

    # the same facts, read straight from PostgreSQL
    with contextlib.closing(pg_server.connect()) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT run_id, status FROM runs")
        assert {(run_id, status) for run_id, status in cursor.fetchall()} == {
            (run_id, "SUCCESS") for run_id in run_ids
        }
        cursor.execute(
            "SELECT asset_key, partition FROM event_logs"
            " WHERE dagster_event_type = 'ASSET_MATERIALIZATION'"
            " AND asset_key IN ('[\"core_person_queries\"]', '[\"out_team_disproportionality\"]',"
            " '[\"publication\"]') ORDER BY asset_key"
        )
        assert cursor.fetchall() == [
            ('["core_person_queries"]', month),
            ('["out_team_disproportionality"]', None),
            ('["publication"]', None),
        ]
        cursor.execute(
            "SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_CHECK_EVALUATION'")
        assert cursor.fetchone()[0] > 0  # the blocking GX and row-accounting checks ran
        cursor.execute(
            "SELECT partition FROM dynamic_partitions"
            " WHERE partitions_def_name = 'month' ORDER BY partition"
        )
        assert cursor.fetchall() == [(month,)]
        cursor.execute("SELECT to_regclass('public.instigators') IS NOT NULL")
        assert cursor.fetchone() == (True,)

    # nothing went to the SQLite default under DAGSTER_HOME, and telemetry wrote nothing
    assert not list(dagster_home.rglob("*.db"))
    assert not (dagster_home / "logs" / "event.log").exists()
    assert not (dagster_home / ".telemetry").exists()


def test_missing_server_skips_locally_and_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no PostgreSQL"):
        _skip_or_fail("no PostgreSQL server binaries (initdb, pg_ctl) found")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="run .ci/postgres.sh"):
        _skip_or_fail("no PostgreSQL server binaries (initdb, pg_ctl) found")
