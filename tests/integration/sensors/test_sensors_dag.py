"""A whole DAG run: a deferrable order-status sensor, then a deferrable availability sensor whose dates feed a
mapped task, while the emulator's clock moves the order to Completed and produces the imagery."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest

from airflow_provider_clearsky.emulator.handle import EmulatorHandle

from .conftest import UTC, place_order, xcom

pytestmark = [pytest.mark.integration, pytest.mark.dag]

DAY = 86400.0

SOURCE = """
import datetime as dt
from airflow.sdk import DAG, task
from airflow_provider_clearsky.sensors.availability import ClearSkyImageAvailabilitySensor
from airflow_provider_clearsky.sensors.order_status import ClearSkyOrderStatusSensor

FIELD = "POLYGON ((8.61 50.11, 8.64 50.11, 8.64 50.14, 8.61 50.14, 8.61 50.11))"

with DAG("clearsky_sensors_mapped", schedule=None, start_date=dt.datetime(2025, 1, 1)) as dag:
    order = ClearSkyOrderStatusSensor(
        task_id="order_done",
        order_guid="{{ dag_run.conf['order_guid'] }}",
        deferrable=True,
        poke_interval=0.3,
        exponential_backoff=False,
        timeout=120,
    )
    dates = ClearSkyImageAvailabilitySensor(
        task_id="dates",
        wkt=FIELD,
        date_from="{{ dag_run.conf['month'] }}-01",
        date_to="{{ macros.ds_add(dag_run.conf['month'] ~ '-01', 29) }}",
        deferrable=True,
        poke_interval=0.3,
        exponential_backoff=False,
        timeout=120,
    )

    @task
    def process(day: str) -> str:
        return f"processed {day}"

    order >> dates
    process.expand(day=dates.output)
"""


def test_deferrable_sensors_feed_a_mapped_task(write_dag: Any, emu: EmulatorHandle) -> None:
    # A recurring weekly order from June 1st, placed on June 10th: UpToDate ~2.5 emulated hours later; the
    # month's image dates 01, 08, 15, 22, 29 are all produced only on 06-30 06:00.
    emu.control.set_time(dt.datetime(2025, 6, 10, tzinfo=UTC))
    guid = place_order(date_from="2025-06-01", date_to=None)
    dag = write_dag("clearsky_sensors_mapped", SOURCE)

    def start_clock_after_first_poke() -> None:
        # The clock stands still until the status sensor has seen the order once, so both sensors must wait.
        deadline = time.monotonic() + 60
        while emu.control.request_count("/api/tasking/orders/details") == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        emu.control.set_speed(4 * DAY)

    clock = threading.Thread(target=start_clock_after_first_poke, daemon=True)
    clock.start()
    run = dag.test(run_conf={"order_guid": guid, "month": "2025-06"})
    clock.join()
    assert run.state == "success"
    (record,) = xcom("clearsky_sensors_mapped", run.run_id, "order_done")
    assert record["TaskOrderGuid"] == guid and record["OrderingProcessStatus"] == "UpToDate"
    dates = ["2025-06-01", "2025-06-08", "2025-06-15", "2025-06-22", "2025-06-29"]
    assert xcom("clearsky_sensors_mapped", run.run_id, "dates") == [dates]
    assert xcom("clearsky_sensors_mapped", run.run_id, "process") == [f"processed {d}" for d in dates]
    # both waits ran in triggers: only the order trigger lists orders, only the window trigger searches
    assert emu.control.request_count("/api/tasking/orders", method="GET") >= 1
    assert emu.control.request_count("/api/satelliteimages/search/available") >= 1
    assert emu.control.now() > dt.datetime(2025, 6, 30, 6, tzinfo=UTC)
