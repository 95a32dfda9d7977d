"""The settings ``make airflow`` starts Airflow with (fast: nothing is started)."""

from __future__ import annotations

import json
from pathlib import Path

from airflow_provider_clearsky.emulator.demo import connection_json, standalone_env


def test_standalone_runs_one_api_server_process(tmp_path: Path) -> None:
    # Four (Airflow's default) restart in a loop on a busy machine: uvicorn kills children slow to answer its ping.
    env = standalone_env({"AIRFLOW_HOME": str(tmp_path)}, 8793, tmp_path / "passwords.json")

    assert env["AIRFLOW__API__WORKERS"] == "1"
    assert env["AIRFLOW_HOME"] == str(tmp_path)
    assert env["AIRFLOW__API__BASE_URL"] == "http://127.0.0.1:8793"


def test_demo_connection_has_extras_on_every_airflow_version() -> None:
    # The triggerer reads them (Airflow 3.0 included): the deferred waits of the examples run with them.
    conn = json.loads(connection_json("http://127.0.0.1:9"))

    assert conn["extra"] == {"dashboard_url": "http://127.0.0.1:9/_emulator/dashboard"}
