"""Helpers shared by the ordering-operator tests (no tests here): a fake task instance and state store,
task contexts, AOIs, and a spy on the bodies the hook sends."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook
from airflow_provider_clearsky.operators.orders import ClearSkyCreateOrderOperator

AOI_WKT = "POLYGON ((12.50 55.60, 12.56 55.60, 12.56 55.64, 12.50 55.64, 12.50 55.60))"
AOI2_WKT = "POLYGON ((12.60 55.60, 12.66 55.60, 12.66 55.64, 12.60 55.64, 12.60 55.60))"
AOI_GEOJSON = {
    "type": "Polygon",
    "coordinates": [[[12.50, 55.60], [12.56, 55.60], [12.56, 55.64], [12.50, 55.64], [12.50, 55.60]]],
}
CONSTELLATIONS = ["Sentinel1", "Sentinel2", "Landsat89"]


class FakeTI:
    """Just what the operators and the resumable-job mixin use of a running task instance."""

    def __init__(self, try_number: int = 1, map_index: int = -1) -> None:
        self.try_number = try_number
        self.map_index = map_index
        self.stats_tags: dict[str, str] = {}
        self.start_date = dt.datetime.now(dt.UTC)
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        json.dumps(value)  # XCom values must be small JSON
        self.xcoms[key] = value


class DictStore:
    """``task_state_store`` of one task instance, kept across its tries."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any, **_: Any) -> None:
        json.dumps(value)
        self.values[key] = value


class DyingStore(DictStore):
    """The worker is killed right after the create answer, before the order GUID is stored."""

    def set(self, key: str, value: Any, **kwargs: Any) -> None:
        if key == "clearsky_order_guid":
            raise SystemExit("worker killed")
        super().set(key, value, **kwargs)


def context(
    ti: FakeTI | None = None,
    store: DictStore | None = None,
    run_start: dt.datetime | None = None,
) -> dict[str, Any]:
    ctx: dict[str, Any] = {
        "ti": ti or FakeTI(),
        "dag_run": SimpleNamespace(start_date=run_start or dt.datetime.now(dt.UTC)),
    }
    if store is not None:
        ctx["task_state_store"] = store
    return ctx


class BodySpy:
    """Records (endpoint, JSON body) of every call the hook sends."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def bodies(self, endpoint: str) -> list[Any]:
        return [body for name, body in self.calls if name == endpoint]


def install_spy(monkeypatch: pytest.MonkeyPatch) -> BodySpy:
    """Record every body the hook sends (use from a ``spy`` fixture)."""
    recorder = BodySpy()
    original = ClearSkyHook.run

    def run(self: ClearSkyHook, call: Any) -> Any:
        recorder.calls.append((call.endpoint, json.loads(json.dumps(call.json))))
        return original(self, call)

    monkeypatch.setattr(ClearSkyHook, "run", run)
    return recorder


def month_start(moment: dt.datetime) -> str:
    return moment.date().replace(day=1).isoformat()


def reusing_create_operator(
    task_id: str, date_from: str, date_to: str | None = None, **overrides: Any
) -> ClearSkyCreateOrderOperator:
    """A create operator over AOI_WKT with ``if_exists="reuse"`` and a budget of 100 EUR (overrides win)."""
    values: dict[str, Any] = {
        "wkt": AOI_WKT,
        "model": "Stratus2",
        "satellite_constellations": CONSTELLATIONS,
        "image_frequency": 7,
        "date_from": date_from,
        "date_to": date_to,
        "max_cost": 100.0,
        "if_exists": "reuse",
    }
    values.update(overrides)
    return ClearSkyCreateOrderOperator(task_id=task_id, **values)
