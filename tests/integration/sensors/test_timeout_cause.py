"""A sensor that times out while its checks keep failing says so: the timeout names the last transient error.

Transient API errors (429, 5xx, timeouts, dropped connections) mean "not yet" to a sensor, so an outage ends in
the sensor's timeout. The timeout (or the soft_fail skip) then names the last failed check, in every mode: poke,
reschedule, and deferrable (the trigger's timeout event, turned into the error by ``execute_complete``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from typing import Any

import pytest

from airflow_provider_clearsky._compat import AirflowSensorTimeout, AirflowSkipException
from airflow_provider_clearsky.emulator.handle import EmulatorHandle
from airflow_provider_clearsky.sensors.availability import ClearSkyImageAvailabilitySensor
from airflow_provider_clearsky.sensors.order_status import ClearSkyOrderStatusSensor

from .conftest import FIELD, place_order

pytestmark = pytest.mark.integration

DETAILS = "/api/tasking/orders/details"
ORDERS = "/api/tasking/orders*"
IMAGERY = "/api/satelliteimages/*"
FAILED_503 = r"the last (\d+ checks|check) failed: \[{method} {path}, HTTP 503"


def status_sensor(guid: str, **kwargs: Any) -> ClearSkyOrderStatusSensor:
    options: dict[str, Any] = {
        "task_id": "wait",
        "order_guid": guid,
        "poke_interval": 0.05,
        "exponential_backoff": False,
        "timeout": 0.3,
        "deferrable": False,
    }
    return ClearSkyOrderStatusSensor(**{**options, **kwargs})


def availability_sensor(**kwargs: Any) -> ClearSkyImageAvailabilitySensor:
    options: dict[str, Any] = {
        "task_id": "wait_imagery",
        "wkt": FIELD,
        "dates": ["2025-06-08"],
        "poke_interval": 0.05,
        "exponential_backoff": False,
        "timeout": 0.3,
        "deferrable": False,
    }
    return ClearSkyImageAvailabilitySensor(**{**options, **kwargs})


async def first_event(trigger: Any) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger ended without an event")


class RescheduledTI:
    """What reschedule mode asks of the task instance: when the first try of this wait started."""

    def __init__(self, started: dt.datetime) -> None:
        self.started = started

    def get_first_reschedule_date(self, context: Any) -> dt.datetime:
        return self.started

    def xcom_push(self, key: str, value: Any) -> None:
        """The order link and the record the sensor keeps (a real task instance has this too)."""


def test_poke_timeout_during_an_outage_names_the_last_error(emu: EmulatorHandle) -> None:
    guid = place_order()
    emu.control.add_fault("503", path=DETAILS, times=0)
    with pytest.raises(AirflowSensorTimeout) as timeout:
        status_sensor(guid).execute({})
    text = str(timeout.value)
    assert text.startswith(f"timed out after 0.3 s waiting for ClearSKY order {guid}"), text
    assert re.search(FAILED_503.format(method="POST", path=DETAILS), text), text

    with pytest.raises(AirflowSkipException) as skip:
        status_sensor(guid, soft_fail=True).execute({})
    assert re.search(FAILED_503.format(method="POST", path=DETAILS), str(skip.value)), str(skip.value)
    assert "soft_fail" in str(skip.value)


def test_timeout_without_failures_names_the_last_status_only(emu: EmulatorHandle) -> None:
    guid = place_order()  # the clock is frozen: the order stays in Preparing
    emu.control.add_fault("503", path=DETAILS, times=2)  # the first check fails (the hook retries once) ...
    with pytest.raises(AirflowSensorTimeout) as timeout:
        status_sensor(guid).execute({})
    text = str(timeout.value)
    assert emu.control.request_count(DETAILS, status=503) == 2
    # ... and the later ones get answers: the error that no longer matters is not named
    assert text == f"timed out after 0.3 s waiting for ClearSKY order {guid} (last status Preparing)", text


def test_reschedule_timeout_during_an_outage_names_the_last_error(emu: EmulatorHandle) -> None:
    guid = place_order()
    emu.control.add_fault("503", path=DETAILS, times=0)
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    with pytest.raises(AirflowSensorTimeout) as timeout:
        status_sensor(guid, mode="reschedule").execute({"ti": RescheduledTI(long_ago)})  # type: ignore[arg-type]
    text = str(timeout.value)
    assert re.search(FAILED_503.format(method="POST", path=DETAILS), text), text
    assert "the last check failed" in text  # one check per reschedule try


def test_availability_poke_timeout_during_an_outage_names_the_last_error(emu: EmulatorHandle) -> None:
    emu.control.add_fault("503", path=IMAGERY, times=0)
    with pytest.raises(AirflowSensorTimeout) as timeout:
        availability_sensor().execute({})
    text = str(timeout.value)
    assert "waiting for ClearSKY imagery for 2025-06-08" in text, text
    path = "/api/satelliteimages/process/composite/available"
    assert re.search(FAILED_503.format(method="POST", path=path), text), text


def test_deferred_status_timeout_during_an_outage_names_the_last_error(emu: EmulatorHandle) -> None:
    from airflow_provider_clearsky._compat import TaskDeferred

    guid = place_order()
    with pytest.raises(TaskDeferred) as deferred:
        status_sensor(guid, deferrable=True).execute({})
    emu.control.add_fault("503", path=ORDERS, times=0)  # the outage starts once the wait is in the triggerer
    event = asyncio.run(first_event(deferred.value.trigger))
    assert event["status"] == "timeout", event
    assert "HTTP 503" in event["last_error"], event
    with pytest.raises(AirflowSensorTimeout) as timeout:
        status_sensor(guid, deferrable=True).execute_complete({}, event)
    text = str(timeout.value)
    assert f"timed out waiting for ClearSKY order {guid}" in text, text
    assert re.search(FAILED_503.format(method="GET", path="/api/tasking/orders"), text), text


def test_deferred_availability_timeout_during_an_outage_names_the_last_error(emu: EmulatorHandle) -> None:
    emu.control.add_fault("503", path=IMAGERY, times=0)
    sensor = availability_sensor(deferrable=True)
    trigger = sensor._trigger(time.time() + 0.3)
    event = asyncio.run(first_event(trigger))
    assert event["status"] == "timeout", event
    with pytest.raises(AirflowSkipException) as skip:
        availability_sensor(deferrable=True, soft_fail=True).execute_complete({}, event)
    text = str(skip.value)
    path = "/api/satelliteimages/process/composite/available"
    assert re.search(FAILED_503.format(method="POST", path=path), text), text
