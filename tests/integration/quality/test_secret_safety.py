"""Secret safety: run the examples with a recognisable fake API key and a signed-looking upload URL, then
search every task log, XCom value, rendered template field, raised exception text and the emulator's
access log for either. Zero occurrences, with positive controls proving each place was really searched."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.airflow30 import lines_holding, register_dag_file
from tests.system.conftest import EXAMPLES, load_example, task_states, utc

pytestmark = [pytest.mark.integration, pytest.mark.dag]

CANARY_KEY = "CANARY-KEY-5f1d9e0c-never-print-me"
CANARY_SIGNATURE = "CANARY-SIG-77aa90be"
FUNEN = (EXAMPLES / "aoi" / "funen_dairy_fields.wkt").read_text().strip()
CANARIES = (CANARY_KEY, CANARY_SIGNATURE)


class _Bucket(BaseHTTPRequestHandler):
    """A loopback stand-in for a signed-URL bucket: accepts PUTs, logs nothing."""

    received: list[int] = []

    def do_PUT(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        remaining = length
        while remaining:
            remaining -= len(self.rfile.read(min(remaining, 1 << 20)))
        type(self).received.append(length)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def bucket_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Bucket)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Bucket.received = []
    yield f"http://127.0.0.1:{server.server_port}/imagery/composite.tif?X-Goog-Signature={CANARY_SIGNATURE}"
    server.shutdown()


@pytest.fixture
def canary_emulator(clearsky_emulator_factory, monkeypatch, airflow_db):
    from airflow_provider_clearsky.emulator.config import AccountConfig

    emulator = clearsky_emulator_factory(accounts=[AccountConfig(key=CANARY_KEY)], access_log=True)
    connection = {
        "conn_type": "clearsky",
        "host": emulator.url,
        "password": CANARY_KEY,
        "extra": {"max_retries": 2, "backoff_initial": 0.05, "backoff_max": 0.2},
    }
    monkeypatch.setenv("AIRFLOW_CONN_CLEARSKY_DEFAULT", json.dumps(connection))
    monkeypatch.setenv("CLEARSKY_EXAMPLE_POKE_SECONDS", "1")
    return emulator


def _stored(run: Any) -> tuple[list[Any], list[Any]]:
    """Every XCom value and every rendered-fields record of a DAG run."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        xcoms = session.scalars(
            select(XComModel).where(XComModel.dag_id == run.dag_id, XComModel.run_id == run.run_id)
        ).all()
        rendered = session.scalars(
            select(RenderedTaskInstanceFields).where(
                RenderedTaskInstanceFields.dag_id == run.dag_id, RenderedTaskInstanceFields.run_id == run.run_id
            )
        ).all()
        return [XComModel.deserialize_value(x) for x in xcoms], [r.rendered_fields for r in rendered]


def _upload_dag(write_dag: Any, url: str) -> Any:
    return write_dag(
        "clearsky_secret_upload",
        f"""
        import datetime as dt
        from airflow.sdk import DAG
        from airflow_provider_clearsky.operators.download import ClearSkyDownloadCompositeOperator

        with DAG("clearsky_secret_upload", schedule=None, start_date=dt.datetime(2025, 1, 1)) as dag:
            ClearSkyDownloadCompositeOperator(
                task_id="upload",
                wkt={FUNEN!r},
                date="2025-06-02",
                bands="rgb",
                resolution=40,
                upload_url="{{{{ params.target }}}}",
                params={{"target": {url!r}}},
            )
        """,
    )


def test_no_key_or_signed_url_anywhere(canary_emulator, bucket_url, write_dag, tmp_path, caplog, capfd):
    caplog.set_level(logging.INFO)  # Airflow's default level
    for name in ("airflow_provider_clearsky", "clearsky_emulator", "httpx"):
        caplog.set_level(logging.DEBUG, logger=name)  # our own code and its HTTP client: everything
    control = canary_emulator.control
    control.set_time(utc(2025, 6, 1, 0, 30))
    control.set_speed(3600)

    monthly_file = EXAMPLES / "example_clearsky_monthly_monitoring.py"
    register_dag_file(monthly_file, "clearsky_examples")  # Airflow 3.0: so the publish task's Asset is active
    monthly = load_example(monthly_file)
    runs = [monthly.test(logical_date=utc(2025, 6, 1), run_conf={"destination": str(tmp_path)})]
    control.set_time(utc(2025, 6, 7, 12))  # the recurring order's first June image (Monday 2 June) is produced
    runs.append(_upload_dag(write_dag, bucket_url).test())
    for run in runs:
        assert run.state == "success", task_states(run)
    assert len(_Bucket.received) == 1  # the API really used the signed URL

    errors = []  # exception texts of failing calls made with the same key
    from airflow_provider_clearsky.exceptions import ClearSkyApiError
    from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook
    from airflow_provider_clearsky.models import ImageryRequest

    hook = ClearSkyHook()
    elsewhere = "POLYGON ((20 40, 20.1 40, 20.1 40.1, 20 40.1, 20 40))"
    for request in (
        ImageryRequest(wkt=elsewhere, date="2025-05-08", upload_url=bucket_url),
        ImageryRequest(wkt=FUNEN, date="2031-01-01", upload_url=bucket_url),
    ):
        with pytest.raises(ClearSkyApiError) as raised, hook.stream_composite(request):
            pass
        errors += [str(raised.value), repr(raised.value), repr(request), str(raised.value.__cause__)]
    hook.close()

    stored = [_stored(run) for run in runs]
    xcom_text = json.dumps([values for values, _ in stored], default=str)
    rendered_text = json.dumps([fields for _, fields in stored], default=str)
    out, err = capfd.readouterr()
    log_files = "".join(p.read_text(errors="replace") for p in Path(tmp_path).rglob("*.log"))
    access = [r.getMessage() for r in caplog.records if r.name == "clearsky_emulator.access"]
    places = {
        "task logs (stdout/stderr)": out + err,
        "log records": caplog.text,
        "log files": log_files,
        "XCom values": xcom_text,
        "rendered template fields": rendered_text,
        "exception texts": "\n".join(errors),
        "emulator access log": "\n".join(access),
    }

    # Positive controls: each place holds what it should, so a zero below means something.
    assert "/api/tasking/orders" in places["emulator access log"]
    assert "/api/satelliteimages/process/composite" in places["emulator access log"]
    assert "order_guid" in places["XCom values"] or "TaskOrderGuid" in places["XCom values"]
    assert "2025-06-02" in places["rendered template fields"]
    assert "1006" in places["exception texts"] or "covered" in places["exception texts"]
    assert "clearsky" in places["task logs (stdout/stderr)"].lower()

    # Airflow 3.0 prints its own in-process DEBUG exchange lines, raw secrets included (see tests/support/airflow30.py):
    # not ours, and not printed by a real worker at the default INFO level. Every other line is searched.
    places["task logs (stdout/stderr)"] = "\n".join(lines_holding(out + err, *CANARIES))
    leaks = {place: [c for c in CANARIES if c in text] for place, text in places.items()}
    assert {place: found for place, found in leaks.items() if found} == {}
