"""CLI, subprocess start, SQLite persistence across restarts, the fixture handle and light imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from airflow_provider_clearsky.emulator import DEMO_API_KEY, EmulatorConfig
from airflow_provider_clearsky.emulator.cli import build_parser
from airflow_provider_clearsky.emulator.handle import EmulatorHandle
from airflow_provider_clearsky.emulator.server import EmulatorServer

from .conftest import data, order_body, utc

PY = sys.executable


def test_help_documents_every_option() -> None:
    out = subprocess.run(
        [PY, "-m", "airflow_provider_clearsky.emulator", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for opt in build_parser()._option_string_actions:
        assert opt in out
    for opt in (
        "--host",
        "--port",
        "--api-key",
        "--admin",
        "--clock-speed",
        "--start-time",
        "--state-file",
        "--fault",
        "--concurrency-error",
    ):
        assert opt in out
    assert DEMO_API_KEY in out


def test_subprocess_start_prints_url_and_serves(tmp_path: Path) -> None:
    bindir = os.path.dirname(PY)
    exe = os.path.join(bindir, "clearsky-emulator")
    cmd = [exe] if os.path.exists(exe) else [PY, "-m", "airflow_provider_clearsky.emulator"]
    proc = subprocess.Popen(
        [
            *cmd,
            "--port",
            "0",
            "--api-key",
            "cli-key-invented",
            "--start-time",
            "2025-06-10T12:00:00Z",
            "--clock-speed",
            "0",
            "--fault",
            "503,path=/api/tasking/models",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        t = time.monotonic()
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("ClearSKY emulator serving at http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        assert time.monotonic() - t < 10
        h = {"x-api-key": "cli-key-invented"}
        assert httpx.get(url + "/api/tasking/models", headers=h).status_code == 503
        assert httpx.get(url + "/api/tasking/models", headers=h).status_code == 200
        assert httpx.get(url + "/api/tasking/models", headers={"x-api-key": DEMO_API_KEY}).status_code == 401
        est = data(httpx.post(url + "/api/tasking/orders/estimate", json=order_body(), headers=h))
        assert est["CancellationDate"] == "2025-06-30"
        assert httpx.get(url + "/_emulator/clock").status_code == 404
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "cli-key-invented" not in err  # access log redacts the key
    assert '"GET /api/tasking/models" 503' in err


def test_bad_fault_spec_exits_2() -> None:
    r = subprocess.run(
        [PY, "-m", "airflow_provider_clearsky.emulator", "--fault", "explode"], capture_output=True, text=True
    )
    assert r.returncode == 2 and "unknown fault kind" in r.stderr


def test_a_certificate_without_its_key_or_that_cannot_be_read_exits_2(tmp_path: Path) -> None:
    command = [PY, "-m", "airflow_provider_clearsky.emulator", "--tls-cert", str(tmp_path / "cert.pem")]
    r = subprocess.run(command, capture_output=True, text=True)
    assert r.returncode == 2 and "--tls-cert and --tls-key" in r.stderr
    r = subprocess.run([*command, "--tls-key", str(tmp_path / "key.pem")], capture_output=True, text=True)
    assert r.returncode == 2 and "cannot serve HTTPS with --tls-cert" in r.stderr and "Traceback" not in r.stderr


def test_sqlite_state_survives_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "state.sqlite")
    cfg = {"port": 0, "state_file": state, "start_time": utc(2025, 6, 10, 12), "clock_speed": 0}
    with EmulatorServer(EmulatorConfig(**cfg)) as s1:  # type: ignore[arg-type]
        h = {"x-api-key": DEMO_API_KEY}
        guid = data(httpx.post(s1.url + "/api/tasking/orders", json=order_body(), headers=h))["TaskOrderGuid"]
        s1.control.advance(hours=3)
        balance = s1.control.account(DEMO_API_KEY)["EuroCreditAmount"]
    cfg.pop("start_time")
    with EmulatorServer(EmulatorConfig(**cfg)) as s2:  # type: ignore[arg-type]
        assert s2.control.now() == utc(2025, 6, 10, 15)  # the clock resumes too
        orders = data(httpx.get(s2.url + "/api/tasking/orders", headers=h))["TaskOrders"]
        assert [o["TaskOrderGuid"] for o in orders] == [guid]
        assert orders[0]["OrderingProcessStatus"] == "Completed"
        assert s2.control.account(DEMO_API_KEY)["EuroCreditAmount"] == balance < 10_000


def test_handle_connection_helpers(clearsky_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    h = clearsky_emulator
    assert h.connection_dict() == {"conn_type": "clearsky", "host": h.url, "password": DEMO_API_KEY}
    name = h.set_airflow_connection(monkeypatch)
    assert name == "AIRFLOW_CONN_CLEARSKY_DEFAULT" and json.loads(os.environ[name])["host"] == h.url
    uri = h.connection_uri()
    assert uri.startswith("clearsky://:clearsky-demo-key@http%3A%2F%2F127.0.0.1%3A")
    from airflow.models.connection import Connection

    conn = Connection(conn_id="x", uri=uri)
    assert conn.host == h.url and conn.password == DEMO_API_KEY and conn.conn_type == "clearsky"
    with h.client() as c:
        data(c.get("/api/tasking/models"))


def test_imports_stay_light() -> None:
    code = (
        "import sys, airflow_provider_clearsky.emulator, airflow_provider_clearsky.emulator.pytest_plugin;"
        "heavy=[m for m in ('fastapi','uvicorn','shapely','numpy','airflow') if m in sys.modules];"
        "print(heavy)"
    )
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
