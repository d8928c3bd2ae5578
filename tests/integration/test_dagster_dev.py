"""`dagster dev -w workspace.yaml` serves the same asset graph as the Definitions."""

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

from pipelines.definitions import defs

REPO = Path(__file__).resolve().parents[2]
QUERY = b'{"query": "{ assetNodes { assetKey { path } } }"}'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def asset_keys_from_ui(port: int, deadline: float) -> set[str]:
    """Poll the UI's GraphQL endpoint until the code location has loaded, or the deadline."""
    last_error = None
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=QUERY,
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=5) as response:
                nodes = json.load(response)["data"]["assetNodes"]
            if nodes:
                return {"/".join(n["assetKey"]["path"]) for n in nodes}
        except Exception as exc:  # noqa: BLE001 - not up yet
            last_error = exc
        time.sleep(1)
    raise AssertionError(f"dagster dev did not serve the asset graph in time: {last_error}")


def test_dagster_dev_serves_the_asset_graph(tmp_path):
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    # NOTE: started from Python with default signal handling so SIGTERM stops it (FACTS.md).
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster")), "dev", "-w", "workspace.yaml",
         "-p", str(port), "-h", "127.0.0.1"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        served = asset_keys_from_ui(port, time.monotonic() + 120)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    expected = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert served == expected
