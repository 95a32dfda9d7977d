"""ClearSkyOrderStatusSensor against the emulator: poke, reschedule and deferrable, with the clock moving."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from airflow_provider_clearsky._compat import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
)
from airflow_provider_clearsky.emulator.handle import EmulatorHandle
from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook
from airflow_provider_clearsky.sensors._base import ClearSkyWaitFailed
from airflow_provider_clearsky.sensors.order_status import ClearSkyOrderStatusSensor
from airflow_provider_clearsky.triggers.order_status import ClearSkyOrderStatusTrigger

from .conftest import place_order, rows, set_connection, task_instance, xcom

pytestmark = pytest.mark.integration

DETAILS = "/api/tasking/orders/details"
HOUR = 3600.0


def sensor(guid: str, **kwargs: Any) -> ClearSkyOrderStatusSensor:
    options: dict[str, Any] = {
        "task_id": "wait",
        "order_guid": guid,
        "poke_interval": 0.05,
        "exponential_backoff": False,
        "timeout": 30,
        "deferrable": False,
    }
    return ClearSkyOrderStatusSensor(**{**options, **kwargs})


def deny_account(emu: EmulatorHandle, monkeypatch: pytest.MonkeyPatch, deny: bool) -> None:
    emu.control.add_account("reviewed-key-0001", auto_accept=False, auto_deny=deny)
    set_connection(monkeypatch, emu, api_key="reviewed-key-0001")


def test_poke_waits_until_completed_and_returns_the_small_record(emu: EmulatorHandle) -> None:
    guid = place_order()
    assert ClearSkyHook().get_order(guid).status == "Preparing"
    emu.control.set_speed(2 * HOUR)  # the order completes ~2.5 emulated hours after acceptance
    record = sensor(guid).execute({})
    assert record["TaskOrderGuid"] == guid
    assert record["OrderingProcessStatus"] == "Completed"
    assert record["To"] == "2025-06-30"
    assert "Wkt" not in record
    assert emu.control.request_count(DETAILS) >= 3  # it really waited


def test_recurring_order_waits_for_up_to_date(emu: EmulatorHandle) -> None:
    guid = place_order(date_from="2025-07-01", date_to=None)
    emu.control.set_speed(2 * HOUR)
    record = sensor(guid).execute({})
    assert record["OrderingProcessStatus"] == "UpToDate" and record["To"] is None


def test_configurable_target_statuses(emu: EmulatorHandle) -> None:
    guid = place_order()
    emu.control.set_speed(HOUR)
    record = sensor(guid, target_statuses="Processing, AwaitingSatelliteProducts").execute({})
    assert record["OrderingProcessStatus"] == "Processing"


@pytest.mark.parametrize("deferrable", [False, True])
def test_denied_order_fails_fast_or_skips_with_soft_fail(
    emu: EmulatorHandle, monkeypatch: pytest.MonkeyPatch, deferrable: bool
) -> None:
    deny_account(emu, monkeypatch, deny=True)
    guid = place_order()
    emu.control.set_speed(HOUR)  # review takes one emulated hour
    with pytest.raises(ClearSkyWaitFailed, match=rf"{guid}.*Denied"):
        sensor(guid, skip_on_timeout=True).execute({})
    # denied by now: a deferrable sensor sees it at its first check, on the worker
    # soft_fail keeps Airflow's meaning: skipped instead of failed, and the skip says why
    with pytest.raises(AirflowSkipException, match=rf"{guid}.*Denied.*soft_fail: skipped") as skip:
        sensor(guid, soft_fail=True, deferrable=deferrable).execute({})
    assert isinstance(skip.value.__cause__, ClearSkyWaitFailed)


def test_cancelled_order_fails_fast(emu: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    deny_account(emu, monkeypatch, deny=False)
    guid = place_order()
    with ClearSkyHook() as hook:
        hook.cancel_order(guid)
    with pytest.raises(ClearSkyWaitFailed, match=rf"{guid}.*Canceled"):
        sensor(guid).execute({})
    assert emu.control.request_count(DETAILS) == 1  # no second look


def test_timeout_fails_or_skips_with_soft_fail_or_skip_on_timeout(emu: EmulatorHandle) -> None:
    guid = place_order()  # the clock is frozen: it stays in Preparing
    with pytest.raises(AirflowSensorTimeout):
        sensor(guid, timeout=0.2).execute({})
    with pytest.raises(AirflowSkipException, match="soft_fail: skipped"):
        sensor(guid, timeout=0.2, soft_fail=True).execute({})
    with pytest.raises(AirflowSkipException, match=rf"waiting for ClearSKY order {guid}.*skip_on_timeout: skipped"):
        sensor(guid, timeout=0.2, skip_on_timeout=True).execute({})


def test_transient_faults_are_waited_out(emu: EmulatorHandle) -> None:
    guid = place_order()
    emu.control.add_fault("503", path=DETAILS, times=4)  # 2 pokes' worth, the hook retries once each
    emu.control.set_speed(4 * HOUR)
    record = sensor(guid).execute({})
    assert record["OrderingProcessStatus"] == "Completed"
    assert emu.control.request_count(DETAILS, status=503) == 4


def test_wrong_key_and_unknown_order_fail_fast(emu: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    guid = place_order()
    with pytest.raises(AirflowFailException, match="404"):
        sensor("3f2504e0-4f89-41d3-9a0c-0305e82c3301").execute({})
    set_connection(monkeypatch, emu, api_key="not-a-key-of-the-emulator")
    with pytest.raises(AirflowFailException, match="401"):
        sensor(guid).execute({})


def test_empty_guid_is_refused_before_any_request(emu: EmulatorHandle) -> None:
    with pytest.raises(AirflowFailException, match="order_guid is empty"):
        sensor("  ").execute({})
    assert emu.control.request_count() == 0


def test_deferrable_hands_the_wait_to_the_trigger(emu: EmulatorHandle) -> None:
    from airflow_provider_clearsky._compat import TaskDeferred

    guid = place_order()
    task = sensor(guid, deferrable=True, timeout=600, poke_interval=30, exponential_backoff=True, max_wait=240)
    with pytest.raises(TaskDeferred) as deferred:
        task.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, ClearSkyOrderStatusTrigger)
    _, kwargs = trigger.serialize()
    assert kwargs["order_guid"] == guid and kwargs["poll_interval"] == 30 and kwargs["max_poll_interval"] == 240
    assert kwargs["backoff_factor"] == 2.0
    assert kwargs["deadline"] == pytest.approx(dt.datetime.now().timestamp() + 600, abs=5)
    assert deferred.value.method_name == "execute_complete"
    # execute_complete runs on a fresh instance with only the event
    fresh = sensor(guid, soft_fail=True)
    assert fresh.execute_complete({}, {"status": "success", "order": {"TaskOrderGuid": guid}}) == {
        "TaskOrderGuid": guid
    }
    with pytest.raises(AirflowSkipException):
        fresh.execute_complete({}, {"status": "timeout", "message": "timed out"})
    with pytest.raises(ClearSkyWaitFailed, match="Canceled"):
        fresh.execute_complete({}, {"status": "failure", "message": f"order {guid} ended with status Canceled"})
    with pytest.raises(AirflowFailException):
        fresh.execute_complete({}, {"status": "error", "message": "401", "retryable": False})


def test_a_record_the_triggerer_could_not_complete_is_read_in_the_worker(emu: EmulatorHandle) -> None:
    guid = place_order()
    listed = {"TaskOrderGuid": guid, "OrderingProcessStatus": "Completed"}
    event = {"status": "success", "order": listed, "details_read": False}
    record = sensor(guid).execute_complete({}, event)
    assert "EMULATOR PLACEHOLDER" in record["Attribution"]  # the details' notices, which the list lacked
    assert emu.control.request_count("/api/tasking/orders/details") == 1
    assert sensor(guid).execute_complete({}, {**event, "details_read": True}) == listed  # no second read
    assert emu.control.request_count("/api/tasking/orders/details") == 1


@pytest.mark.parametrize(
    ("options", "timeout_skips", "failure_skips"),
    [({}, False, False), ({"soft_fail": True}, True, True), ({"skip_on_timeout": True}, True, False)],
)
def test_deferred_events_fail_or_skip_as_airflow_says(
    options: dict[str, Any], timeout_skips: bool, failure_skips: bool
) -> None:
    """Resumed from the trigger: soft_fail skips any failure (Airflow's meaning), skip_on_timeout only a timeout."""
    guid = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
    events = {
        "timeout": ({"status": "timeout", "message": "timed out"}, AirflowSensorTimeout, timeout_skips),
        "failure": (
            {"status": "failure", "message": "order ended with status Canceled"},
            ClearSkyWaitFailed,
            failure_skips,
        ),
        "fatal": ({"status": "error", "message": "401", "retryable": False}, AirflowFailException, failure_skips),
    }
    for event, failure, skips in events.values():
        resumed = sensor(guid, deferrable=True, **options)
        with pytest.raises(AirflowSkipException if skips else failure):
            resumed.resume_execution("execute_complete", {"event": event}, {})  # type: ignore[arg-type]


DAG_SOURCE = """
import datetime as dt
from airflow.sdk import DAG
from airflow_provider_clearsky.sensors.order_status import ClearSkyOrderStatusSensor

with DAG("{dag_id}", schedule=None, start_date=dt.datetime(2025, 1, 1)) as dag:
    ClearSkyOrderStatusSensor(
        task_id="wait",
        order_guid="{{{{ dag_run.conf['order_guid'] }}}}",
        mode="{mode}",
        deferrable={deferrable},
        poke_interval=0.2,
        exponential_backoff=False,
        timeout=60,
        retries=2,
        retry_delay=dt.timedelta(seconds=0),
        skip_on_timeout=True,
    )
"""


@pytest.mark.dag
@pytest.mark.parametrize(("mode", "deferrable"), [("poke", False), ("reschedule", False), ("poke", True)])
def test_status_sensor_in_a_dag_run(
    write_dag: Any, emu: EmulatorHandle, reschedule_start_date_parsed: None, mode: str, deferrable: bool
) -> None:
    dag_id = f"order_status_{mode}_{deferrable}".lower()
    dag = write_dag(dag_id, DAG_SOURCE.format(dag_id=dag_id, mode=mode, deferrable=deferrable))
    guid = place_order()
    emu.control.set_speed(HOUR)
    run = dag.test(run_conf={"order_guid": guid})
    assert run.state == "success"
    (record,) = xcom(dag_id, run.run_id, "wait")
    assert record["TaskOrderGuid"] == guid and record["OrderingProcessStatus"] == "Completed"
    # Each way of waiting really happened: only the trigger lists orders; reschedules are recorded.
    listed = emu.control.request_count("/api/tasking/orders", method="GET")
    assert (listed > 0) == deferrable
    from airflow.models.taskreschedule import TaskReschedule

    rescheduled = [r for r in rows(TaskReschedule) if r.ti_id == task_instance(dag_id, run.run_id, "wait").id]
    assert (len(rescheduled) > 0) == (mode == "reschedule")


@pytest.mark.dag
def test_denied_order_fails_the_deferred_task_without_retries_or_skip(
    write_dag: Any, emu: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    dag_id = "order_status_denied"
    dag = write_dag(dag_id, DAG_SOURCE.format(dag_id=dag_id, mode="poke", deferrable=True))
    deny_account(emu, monkeypatch, deny=True)
    guid = place_order()
    emu.control.set_speed(HOUR)
    run = dag.test(run_conf={"order_guid": guid})
    assert run.state == "failed"
    ti = task_instance(dag_id, run.run_id, "wait")
    assert ti.state == "failed"  # not skipped by skip_on_timeout, not up for retry
    assert ti.try_number == 1
