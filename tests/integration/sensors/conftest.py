"""Fixtures of the sensor tests: the emulator as ``clearsky_default``, orders placed through the hook."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_clearsky.emulator.handle import EmulatorHandle
from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook
from airflow_provider_clearsky.models import OrderRequest

FIELD = "POLYGON ((8.61 50.11, 8.64 50.11, 8.64 50.14, 8.61 50.14, 8.61 50.11))"
STRATUS2 = ["Sentinel1", "Sentinel2", "Landsat89"]
UTC = dt.UTC


def set_connection(monkeypatch: pytest.MonkeyPatch, emu: EmulatorHandle, api_key: str | None = None) -> None:
    conn = {
        **emu.connection_dict(),
        "extra": {"backoff_initial": 0, "backoff_max": 0, "max_retries": 1},
    }
    if api_key is not None:
        conn["password"] = api_key
    monkeypatch.setenv("AIRFLOW_CONN_CLEARSKY_DEFAULT", json.dumps(conn))


@pytest.fixture
def emu(clearsky_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorHandle]:
    """The emulator behind ``clearsky_default``, its clock frozen at 2025-07-10 00:00 UTC."""
    set_connection(monkeypatch, clearsky_emulator)
    clearsky_emulator.control.set_speed(0)
    clearsky_emulator.control.set_time(dt.datetime(2025, 7, 10, tzinfo=UTC))
    yield clearsky_emulator
    clearsky_emulator.control.set_speed(0)


@pytest.fixture
def reschedule_start_date_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Work around an Airflow 3.0 ``dag.test()`` bug for sensors in ``mode="reschedule"``.

    Airflow 3.0's execution API client builds ``TaskRescheduleStartDate`` with ``model_construct`` (no
    validation), so the first reschedule date stays an ISO string. A real worker re-parses it when the answer
    crosses the supervisor socket, but ``dag.test()`` runs the task in-process and hands the string straight to
    ``BaseSensorOperator.execute``, which fails on its second try with ``TypeError: unsupported operand type(s)
    for -: 'datetime.datetime' and 'str'`` (apache/airflow#58777, fixed by #58791: newer clients validate).
    This applies that fix, so the reschedule path of our sensors is still exercised on 3.0.
    """
    from airflow_provider_clearsky._compat import airflow_version

    if not airflow_version().startswith("3.0."):
        return
    from airflow.sdk.api.client import TaskInstanceOperations
    from airflow.sdk.execution_time.comms import TaskRescheduleStartDate

    unvalidated = TaskInstanceOperations.get_reschedule_start_date

    def validated(self: Any, id: Any, try_number: int = 1) -> TaskRescheduleStartDate:
        return TaskRescheduleStartDate(start_date=unvalidated(self, id, try_number).start_date)

    monkeypatch.setattr(TaskInstanceOperations, "get_reschedule_start_date", validated)


def place_order(**overrides: Any) -> str:
    """An order over FIELD placed through the hook (a June-2025 historical one unless told otherwise)."""
    values: dict[str, Any] = {
        "wkt": FIELD,
        "model": "Stratus2",
        "satellite_constellations": STRATUS2,
        "image_frequency": 7,
        "reference_date": "2025-06-01",
        "date_from": "2025-06-01",
        "date_to": "2025-06-30",
        **overrides,
    }
    with ClearSkyHook() as hook:
        return hook.create_order(OrderRequest(**values)).guid


def rows(model: Any, **filters: Any) -> list[Any]:
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = select(model)
        for name, value in filters.items():
            query = query.where(getattr(model, name) == value)
        found = list(session.scalars(query))
        session.expunge_all()
        return found


def xcom(dag_id: str, run_id: str, task_id: str) -> list[Any]:
    from airflow.models.xcom import XComModel

    found = rows(XComModel, dag_id=dag_id, run_id=run_id, task_id=task_id, key="return_value")
    return [XComModel.deserialize_value(x) for x in sorted(found, key=lambda x: x.map_index)]


def task_instance(dag_id: str, run_id: str, task_id: str) -> Any:
    from airflow.models.taskinstance import TaskInstance

    (ti,) = rows(TaskInstance, dag_id=dag_id, run_id=run_id, task_id=task_id)
    return ti
