"""`make dev` (`stopcheck dev`, i.e. `dagster dev -w workspace.yaml`) serves the same asset graph
as the Definitions, in a code location named `stopcheck`, on an instance with telemetry off."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

from pipelines.definitions import defs

REPO = Path(__file__).resolve().parents[2]
QUERY = ("{ assetNodes { assetKey { path } } "
         "workspaceOrError { ... on Workspace { locationEntries { name } } } }")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def query_ui(port: int, deadline: float) -> dict:
    """Poll the UI's GraphQL endpoint until the code location has loaded, or the deadline."""
    last_error = None
    body = json.dumps({"query": QUERY}).encode()
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=body,
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=5) as response:
                data = json.load(response)["data"]
            if data["assetNodes"]:
                return data
        except Exception as exc:  # noqa: BLE001 - not up yet
            last_error = exc
        time.sleep(1)
    raise AssertionError(f"dagster dev did not serve the asset graph in time: {last_error}")


def test_dagster_dev_serves_the_asset_graph_as_location_stopcheck(tmp_path):
    port = free_port()
    home = tmp_path / "dagster_home"  # absent: `stopcheck dev` creates it, as `make dev` does
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    log = tmp_path / "dev.log"
    # NOTE: started from Python with default signal handling so SIGTERM stops it (FACTS.md).
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("stopcheck")), "dev", "-p", str(port),
             "-h", "127.0.0.1"],
            cwd=tmp_path, env=env, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            served = query_ui(port, time.monotonic() + 120)
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    keys = {"/".join(n["assetKey"]["path"]) for n in served["assetNodes"]}
    assert keys == {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert [e["name"] for e in served["workspaceOrError"]["locationEntries"]] == ["stopcheck"]
    config = yaml.safe_load((home / "dagster.yaml").read_text())
    assert config["telemetry"] == {"enabled": False}
    assert "Telemetry" not in log.read_text(errors="replace")
    assert not (home / ".telemetry").exists()
