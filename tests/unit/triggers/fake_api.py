"""A tiny scripted ClearSKY API on ``httpx.MockTransport`` for exact trigger tests (no sleeps, no server)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from airflow_provider_clearsky.hooks._api import RetryPolicy
from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook
from airflow_provider_clearsky.triggers import _polling


def ok(data: Any) -> httpx.Response:
    return httpx.Response(200, json={"Succeeded": True, "Error": None, "Data": data})


def fail(status: int, code: int | None = None, message: str = "failed") -> httpx.Response:
    return httpx.Response(status, json={"Succeeded": False, "Error": {"Message": message, "Code": code}, "Data": None})


def order(guid: str, status: str, *, recurring: bool = False) -> dict[str, Any]:
    return {
        "TaskOrderGuid": guid,
        "OrderingProcessStatus": status,
        "Model": "Stratus2",
        "From": "2025-06-01",
        "To": None if recurring else "2025-06-30",
        "ImageFrequency": 7,
        "Wkt": "GEOMETRYCOLLECTION (POLYGON ((0 0, 1 0, 1 1, 0 1, 0 0)))",
    }


@dataclass
class FakeApi:
    """Orders by GUID; ``faults`` answers (or raises) instead of the next requests of a path."""

    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    listed: set[str] | None = None  # GUIDs the list shows (None: all)
    faults: list[Any] = field(default_factory=list)
    availability: Callable[[dict[str, Any]], httpx.Response] | None = None
    search: Callable[[dict[str, Any]], httpx.Response] | None = None
    requests: list[tuple[str, str]] = field(default_factory=list)
    closed: int = 0

    def count(self, path: str) -> int:
        return sum(1 for _, p in self.requests if p == path)

    def set_status(self, guid: str, status: str) -> None:
        self.orders[guid]["OrderingProcessStatus"] = status

    async def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(await request.aread() or b"null")
        path = request.url.path
        self.requests.append((request.method, path))
        if self.faults:
            fault = self.faults.pop(0)
            if isinstance(fault, Exception):
                raise fault
            return fault
        if path == "/api/tasking/orders":
            shown = [o for g, o in self.orders.items() if self.listed is None or g in self.listed]
            return ok({"TaskOrders": shown})
        if path == "/api/tasking/orders/details":
            # POST {"Guids": [...]} (2025 client); the hook retries as GET ?guids=a,b after a 404.
            guids = body["Guids"] if request.method == "POST" else request.url.params["guids"].split(",")
            missing = [g for g in guids if g not in self.orders]
            if missing:
                return fail(404, None, "Task order not found.")
            return ok({"TaskOrders": [self.orders[g] for g in guids]})
        if path == "/api/satelliteimages/process/composite/available" and self.availability:
            return self.availability(body)
        if path == "/api/satelliteimages/search/available" and self.search:
            return self.search(body)
        return fail(404, None, "no route")


class _Transport(httpx.MockTransport):
    def __init__(self, api: FakeApi) -> None:
        super().__init__(api.handle)
        self.api = api

    async def aclose(self) -> None:
        self.api.closed += 1


@contextmanager
def fake_api(api: FakeApi, max_attempts: int = 1) -> Iterator[FakeApi]:
    """Make every trigger hook talk to ``api`` (no retries inside the hook unless asked)."""
    previous = _polling.hook_factory

    def factory(conn_id: str) -> ClearSkyHook:
        policy = RetryPolicy(max_attempts=max_attempts, backoff_initial=0.0, backoff_max=0.0, sleep=lambda _: None)
        return ClearSkyHook(conn_id, retry_policy=policy, async_transport=_Transport(api))

    _polling.hook_factory = factory
    try:
        yield api
    finally:
        _polling.hook_factory = previous


async def until(condition: Callable[[], bool], limit: float = 5.0) -> None:
    """Wait (briefly polling) until ``condition()`` holds; the first poll includes the connection lookup."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)
