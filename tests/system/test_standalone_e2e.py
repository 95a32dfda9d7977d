"""End to end through a real Airflow: ``make airflow``'s standalone mode (scheduler, triggerer, DAG processor,
API server, LocalExecutor) against the emulator; the monthly example triggered and read through the REST API."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.timeout(240),
]

DAG_ID = "example_clearsky_monthly_monitoring"
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


class Demo:
    """``python -m airflow_provider_clearsky.demo --standalone --paused`` in its own process group."""

    def __init__(self, workdir: Path, *extra_args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))}
        env.pop("AIRFLOW_HOME", None)
        command = [sys.executable, "-m", "airflow_provider_clearsky.demo", "--standalone", "--paused"]
        command += ["--port", str(free_port()), "--workdir", str(workdir), *extra_args]
        self.process = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip())

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if found := re.search(pattern, line):
                    return found
            if self.process.poll() is not None:
                break
            time.sleep(0.5)
        raise AssertionError(f"no {pattern!r} in the demo's output:\n" + "\n".join(self.lines[-40:]))

    def stop(self) -> None:
        """Ctrl-C, as a user would; then make sure nothing of it is left."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        finally:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                if not group_alive(self.process.pid):
                    break
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, sig)
                time.sleep(2)


def wait_for_runs(api: httpx.Client, deadline: float) -> list[dict[str, Any]]:
    """Every run of the DAG, once none is queued or running any more."""
    while True:
        runs: list[dict[str, Any]] = api.get(f"/dags/{DAG_ID}/dagRuns").json()["dag_runs"]
        if all(run["state"] in ("success", "failed") for run in runs):
            return runs
        assert time.monotonic() < deadline, [(run["dag_run_id"], run["state"]) for run in runs]
        time.sleep(2)


def trigger_fired(api: httpx.Client, run_id: str) -> bool:
    """Whether the run's order-status wait was resumed by an event of the triggerer (its log, through the API)."""
    answer = api.get(
        f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/wait_for_order/logs/1",
        params={"full_content": True},
        headers={"Accept": "application/json"},
    )
    assert answer.status_code == 200, answer.text
    return "Trigger fired event" in answer.text


def test_monthly_example_through_the_rest_api_of_a_running_airflow(tmp_path: Path) -> None:
    demo = Demo(tmp_path / "demo")
    try:
        ready = demo.wait_for(r"Airflow is running at (\S+)\s+\(user admin, password (\S+)\)", timeout=150)
        url, password = ready.group(1), ready.group(2)
        emulator_url = demo.wait_for(r"ClearSKY emulator (http://127\.0\.0\.1:\d+)", timeout=5).group(1)
        api = httpx.Client(base_url=f"{url}/api/v2", timeout=15)
        token = httpx.post(f"{url}/auth/token", json={"username": "admin", "password": password}, timeout=15)
        token.raise_for_status()
        api.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

        # Triggered as `airflow dags trigger` and the UI do on Airflow 3: no logical date. previous_month() then
        # takes the month before run_after: last month.
        today = dt.datetime.now(dt.UTC)
        this_month = today.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        last_month = (this_month - dt.timedelta(days=1)).replace(day=1)
        body = {"dag_run_id": "rest_api_e2e", "logical_date": None, "conf": {"destination": str(tmp_path / "imagery")}}
        deadline = time.monotonic() + 60
        while (answer := api.post(f"/dags/{DAG_ID}/dagRuns", json=body)).status_code == 404:
            assert time.monotonic() < deadline, "the DAG processor did not register the example"
            time.sleep(1)
        assert answer.status_code == 200, answer.text
        assert api.patch(f"/dags/{DAG_ID}", json={"is_paused": False}).status_code == 200

        deadline = time.monotonic() + 150
        while (state := api.get(f"/dags/{DAG_ID}/dagRuns/rest_api_e2e").json()["state"]) not in ("success", "failed"):
            assert time.monotonic() < deadline, f"the run is still {state}"
            time.sleep(2)
        tis = api.get(f"/dags/{DAG_ID}/dagRuns/rest_api_e2e/taskInstances").json()["task_instances"]
        assert state == "success", [(t["task_id"], t["map_index"], t["state"]) for t in tis]

        guid = api.get(f"/dags/{DAG_ID}/dagRuns/rest_api_e2e/taskInstances/create_order/xcomEntries/return_value")
        order_guid = guid.json()["value"].strip('"')
        links = api.get(f"/dags/{DAG_ID}/dagRuns/rest_api_e2e/taskInstances/create_order/links")
        assert links.status_code == 200, links.text
        link = links.json()["extra_links"]["ClearSKY order"]
        assert link == f"{emulator_url}/_emulator/dashboard/orders/{order_guid}"
        page = httpx.get(link, timeout=10)  # the link opens the emulator's page of the order
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert order_guid in page.text and "recurring" in page.text
        # The unpause also starts the latest scheduled run. Both adopt one order; the run that placed it waits
        # for it deferred, in the triggerer (the other may find it done at its first check).
        runs = wait_for_runs(api, deadline)
        assert all(run["state"] == "success" for run in runs), runs
        assert any(trigger_fired(api, run["dag_run_id"]) for run in runs), (
            "no wait_for_order went through the triggerer"
        )
        downloads = [t for t in tis if t["task_id"] == "download"]
        assert downloads and all(t["state"] == "success" for t in downloads)
        assert sorted(t["rendered_map_index"] for t in downloads)[0].startswith(last_month.strftime("%Y-%m"))
        files = sorted((tmp_path / "imagery" / last_month.strftime("%Y-%m")).glob("*.tif"))
        assert len(files) == len(downloads)
    finally:
        demo.stop()
    assert demo.process.returncode == 0, "\n".join(demo.lines[-20:])
    assert not group_alive(demo.process.pid)
