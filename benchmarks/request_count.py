"""Benchmark: API requests of one monthly run, from order to files, against a careful hand-written script.

Prints figures; not a test. Run from the repository root:

    .venv/bin/python benchmarks/request_count.py

Both runs do the same work against a fresh in-process emulator on 127.0.0.1, its clock frozen at
2025-06-10 and its order lifecycle instant (so the waits end at their first check and the count does not
depend on timing): find no existing order for the area, estimate, order a recurring weekly order from
2025-05-01, check it is up to date, find May's image dates, check each is ready with the exact download
settings, download each composite to disk with its sidecar.

* **operator run**: the shipped ``example_clearsky_monthly_monitoring`` DAG through ``dag.test()``
  (deferrable sensors, so the triggerer's requests count too; mapped downloads).
* **hand-written minimum**: plain ``httpx`` calls, one of each, no repetition: list orders (1), estimate (1),
  create (1), order details until done (1 here; also the attribution notices for the sidecars), account
  limits (1), ``search/available`` for the month (1), ``composite/available`` per image date (d), download
  per image date (d).

Requests are counted from the emulator's request log, by endpoint. The ratio is operator/hand-written over
all requests. Target <= 1.2.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
HOME = tempfile.mkdtemp(prefix="clearsky-bench-requests-")
os.environ["AIRFLOW_HOME"] = HOME
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{HOME}/airflow.db")
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps(
    [
        {
            "name": "clearsky_examples",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(REPO / "example_dags")},
        }
    ]
)
os.environ["CLEARSKY_EXAMPLE_POKE_SECONDS"] = "1"
sys.path.insert(0, str(REPO))

START = dt.datetime(2025, 6, 10, 12, tzinfo=dt.UTC)
RUN = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)  # the scheduled run whose data interval is May
DONE = ("uptodate", "completed")


def start_emulator() -> Any:
    from airflow_provider_clearsky.emulator.config import EmulatorConfig, LifecycleDurations
    from airflow_provider_clearsky.emulator.handle import EmulatorHandle
    from airflow_provider_clearsky.emulator.server import EmulatorServer

    instant = LifecycleDurations(
        review=dt.timedelta(0), preparing=dt.timedelta(0), processing=dt.timedelta(0), production_delay=dt.timedelta(0)
    )
    config = EmulatorConfig(
        port=0, host="127.0.0.1", admin=True, access_log=False, clock_speed=0, start_time=START, durations=instant
    )
    server = EmulatorServer(config).start()
    return EmulatorHandle(server, config.accounts[0].key)


def counts(emulator: Any) -> collections.Counter[str]:
    time.sleep(0.5)  # the emulator logs a streamed answer once it has sent it
    return collections.Counter(f"{e['method']} {e['path']}" for e in emulator.control.request_log())


def operator_run(emulator: Any, destination: Path) -> collections.Counter[str]:
    import importlib.util

    from airflow.utils.db import initdb

    initdb()
    connection = emulator.connection_dict()
    connection["extra"] = {"max_retries": 2, "backoff_initial": 0.05, "backoff_max": 0.2}
    os.environ["AIRFLOW_CONN_CLEARSKY_DEFAULT"] = json.dumps(connection)
    path = REPO / "example_dags" / "example_clearsky_monthly_monitoring.py"
    spec = importlib.util.spec_from_file_location("clearsky_bench_monthly", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    emulator.control.set_time(START)
    emulator.control.set_speed(0)
    run = module.dag.test(logical_date=RUN, run_conf={"destination": str(destination)})
    if run.state != "success":
        raise SystemExit(f"the monthly run ended {run.state}")
    return counts(emulator)


def hand_written_run(emulator: Any, destination: Path) -> collections.Counter[str]:
    """What a careful script does for the same month: every call once, nothing repeated."""
    import httpx

    from airflow_provider_clearsky.models import ImageryRequest, OrderRequest

    sys.path.insert(0, str(REPO / "example_dags"))
    aoi = (REPO / "example_dags" / "aoi" / "funen_dairy_fields.wkt").read_text()
    order = OrderRequest(
        wkt=aoi,
        model="Stratus2",
        satellite_constellations=["Sentinel1", "Sentinel2", "Landsat89"],
        image_frequency=7,
        date_from="2025-05-01",
    )
    emulator.control.set_time(START)
    emulator.control.set_speed(0)
    with httpx.Client(base_url=emulator.url, headers={"x-api-key": emulator.api_key}, timeout=120) as api:
        api.get("/api/tasking/orders", params={"recurringOnly": "true"}).raise_for_status()  # reuse an order?
        api.post("/api/tasking/orders/estimate", json=order.to_payload()).raise_for_status()  # budget
        guid = api.post("/api/tasking/orders", json=order.to_payload()).json()["Data"]["TaskOrderGuid"]
        while True:
            details = api.post("/api/tasking/orders/details", json={"Guids": [guid]}).json()["Data"]
            if details["TaskOrders"][0]["OrderingProcessStatus"].lower() in DONE:
                break
            time.sleep(1.0)  # the same interval as the example's sensors
        api.get("/api/account/info").raise_for_status()  # limits and balance, once
        found = api.post(
            "/api/satelliteimages/search/available", json={"Wkt": aoi, "From": "2025-05-01", "Until": "2025-05-31"}
        ).json()["Data"]
        dates = sorted(set.intersection(*(set(g["Dates"]) for g in found["ModelImageDates"][0]["DatesByGeog"])))
        for date in dates:
            request = ImageryRequest(wkt=aoi, date=date, bandnames="B2,B3,B4,B8", resolution=10)
            flags = api.post("/api/satelliteimages/process/composite/available", json=request.to_payload()).json()
            if not flags["Data"]["FullyAvailable"]:
                raise SystemExit(f"{date} not ready")
            with api.stream("POST", "/api/satelliteimages/process/composite", json=request.to_payload()) as answer:
                answer.raise_for_status()
                with open(destination / f"{date}.tif", "wb") as handle:
                    for chunk in answer.iter_bytes():
                        handle.write(chunk)
    return counts(emulator)


def table(ours: collections.Counter[str], minimum: collections.Counter[str]) -> None:
    print(f"{'endpoint':<58} {'operators':>9} {'hand-written':>12}")
    for endpoint in sorted(set(ours) | set(minimum)):
        print(f"{endpoint:<58} {ours[endpoint]:>9} {minimum[endpoint]:>12}")


def main() -> None:
    emulator = start_emulator()
    try:
        folder = Path(tempfile.mkdtemp(prefix="clearsky-bench-files-"))
        (folder / "dag").mkdir()
        (folder / "hand").mkdir()
        ours = operator_run(emulator, folder / "dag")
        emulator.control.reset()
        minimum = hand_written_run(emulator, folder / "hand")
    finally:
        emulator.server.stop()
    table(ours, minimum)
    total, least = sum(ours.values()), sum(minimum.values())
    print(f"all requests: operators {total}, hand-written {least}, ratio {total / least:.2f} (target <= 1.2)")


if __name__ == "__main__":
    main()
