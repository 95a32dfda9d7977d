"""Unit tests of ClearSkyOrderStatusTrigger and the shared order poller, on a scripted transport."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from airflow_provider_clearsky.triggers import _polling
from airflow_provider_clearsky.triggers.order_status import ClearSkyOrderStatusTrigger
from tests.unit.triggers.fake_api import FakeApi, fail, fake_api, order, until

GUID = "0b7f6a57-1f49-4a53-9d7e-5a4f2c0d9a11"
FAST = {"poll_interval": 0.02, "max_poll_interval": 0.02}


@pytest.fixture(autouse=True)
def _conn(clearsky_connection: str) -> None:
    """Triggers read the (dead-port) connection; the transport never reaches it."""


def trigger(guid: str = GUID, **kwargs) -> ClearSkyOrderStatusTrigger:
    return ClearSkyOrderStatusTrigger(order_guid=guid, **{**FAST, **kwargs})


async def first_event(t: ClearSkyOrderStatusTrigger, limit: float = 5.0) -> dict:
    events = []

    async def collect() -> None:
        async for event in t.run():
            events.append(event.payload)

    await asyncio.wait_for(collect(), limit)
    assert len(events) == 1, events  # exactly one event
    return events[0]


def test_serialize_round_trip() -> None:
    t = ClearSkyOrderStatusTrigger(
        order_guid=GUID,
        clearsky_conn_id="c",
        target_statuses=["Processing"],
        deadline=123.5,
        poll_interval=10,
        max_poll_interval=80,
        backoff_factor=2,
    )
    path, kwargs = t.serialize()
    assert path == "airflow_provider_clearsky.triggers.order_status.ClearSkyOrderStatusTrigger"
    # primitives only
    assert all(isinstance(v, (str, int, float, list, type(None))) for v in kwargs.values())
    again = ClearSkyOrderStatusTrigger(**kwargs)
    assert again.serialize() == (path, kwargs)
    assert kwargs["deadline"] == 123.5 and kwargs["target_statuses"] == ["Processing"]


async def test_success_historical_completed() -> None:
    api = FakeApi(orders={GUID: order(GUID, "Processing")})
    with fake_api(api):
        task = asyncio.ensure_future(first_event(trigger()))
        await until(lambda: api.count("/api/tasking/orders") >= 2)
        assert not task.done()
        api.set_status(GUID, "Completed")
        event = await task
    assert event["status"] == "success"
    assert event["order_guid"] == GUID
    assert event["order"]["TaskOrderGuid"] == GUID and event["order"]["OrderingProcessStatus"] == "Completed"
    assert "Wkt" not in event["order"]  # small record


async def test_the_success_record_is_the_orders_details_which_the_list_may_cut_short() -> None:
    detailed = {**order(GUID, "Completed"), "Attribution": "Contains modified Copernicus Sentinel data"}
    api = FakeApi(orders={GUID: detailed})
    api.handle = _list_without(api, "Attribution")  # type: ignore[method-assign]
    with fake_api(api):
        event = await first_event(trigger())
    assert event["status"] == "success"
    assert event["order"]["Attribution"] == "Contains modified Copernicus Sentinel data"
    assert api.count("/api/tasking/orders/details") == 1 and event["details_read"] is True


async def test_an_order_done_before_the_deadline_is_a_success_even_if_its_details_come_after_it() -> None:
    api = FakeApi(orders={GUID: order(GUID, "Completed")})
    original = api.handle

    async def slow_details(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/details"):
            await asyncio.sleep(0.5)  # past the wait's deadline
        return await original(request)

    api.handle = slow_details  # type: ignore[method-assign]
    with fake_api(api):
        event = await first_event(trigger(deadline=time.time() + 0.3))
    assert event["status"] == "success" and event["details_read"] is True


async def test_when_the_details_cannot_be_read_the_listed_order_is_the_record() -> None:
    api = FakeApi(orders={GUID: order(GUID, "Completed")})
    original = api.handle

    async def details_fail(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/details"):
            api.requests.append((request.method, request.url.path))
            return fail(503)
        return await original(request)

    api.handle = details_fail  # type: ignore[method-assign]
    with fake_api(api):
        event = await first_event(trigger())
    assert event["status"] == "success" and event["order"]["OrderingProcessStatus"] == "Completed"
    assert event["details_read"] is False  # the sensor reads them in the worker


def _list_without(api: FakeApi, field: str):  # type: ignore[no-untyped-def]
    """The API's list answer leaving out ``field``, which the details carry."""
    original = api.handle

    async def handle(request: httpx.Request) -> httpx.Response:
        answer = await original(request)
        if request.url.path == "/api/tasking/orders":
            payload = answer.json()
            for listed in payload["Data"]["TaskOrders"]:
                listed.pop(field, None)
            return httpx.Response(200, json=payload)
        return answer

    return handle


async def test_recurring_default_target_is_up_to_date() -> None:
    api = FakeApi(orders={GUID: order(GUID, "UpToDate", recurring=True)})
    with fake_api(api):
        event = await first_event(trigger())
    assert event["status"] == "success" and event["order_status"] == "UpToDate"


async def test_historical_does_not_stop_at_up_to_date_but_custom_target_does() -> None:
    api = FakeApi(orders={GUID: order(GUID, "Processing")})
    with fake_api(api):
        event = await first_event(trigger(target_statuses=["processing"]))
    assert event["status"] == "success"


@pytest.mark.parametrize("status", ["Canceled", "Denied", "Rejected"])
async def test_terminal_failure(status: str) -> None:
    api = FakeApi(orders={GUID: order(GUID, status)})
    with fake_api(api):
        event = await first_event(trigger())
    assert event["status"] == "failure"
    assert GUID in event["message"] and status in event["message"]
    assert event["order_status"] == status


async def test_deadline_fires_timeout_with_last_status() -> None:
    api = FakeApi(orders={GUID: order(GUID, "Processing")})
    with fake_api(api):
        started = time.monotonic()
        event = await first_event(trigger(deadline=time.time() + 0.15))
    assert event["status"] == "timeout"
    assert "Processing" in event["message"]
    assert 0.1 < time.monotonic() - started < 1.0


async def test_deadline_already_passed_times_out_without_requests() -> None:
    api = FakeApi(orders={GUID: order(GUID, "Completed")})
    with fake_api(api):
        event = await first_event(trigger(deadline=time.time() - 1))
    assert event["status"] == "timeout"
    assert api.requests == []


@pytest.mark.parametrize(
    "fault",
    [
        fail(503, None, "unavailable"),
        fail(429, None, "slow down"),
        fail(400, 1003, "max concurrent requests"),
        httpx.ReadTimeout("read timed out"),
        httpx.ConnectError("refused"),
    ],
)
async def test_transient_errors_are_waited_out(fault) -> None:
    api = FakeApi(orders={GUID: order(GUID, "Completed")}, faults=[fault, fault])
    with fake_api(api):
        event = await first_event(trigger())
    assert event["status"] == "success"
    assert api.count("/api/tasking/orders") == 3  # two failed polls, then the good one


async def test_authentication_error_fails_fast_not_retryable() -> None:
    api = FakeApi(orders={GUID: order(GUID, "Processing")}, faults=[fail(401, None, "API Key is Unauthorized")])
    with fake_api(api):
        event = await first_event(trigger())
    assert event["status"] == "error"
    assert event["retryable"] is False
    assert "401" in event["message"]
    assert len(api.requests) == 1


async def test_order_missing_from_list_is_fetched_by_details() -> None:
    api = FakeApi(orders={GUID: order(GUID, "Completed")}, listed=set())  # e.g. expired, so not listed
    with fake_api(api):
        event = await first_event(trigger())
    assert event["status"] == "success"
    # One read finds the order the list left out, one more gives the success record (a rare path: not worth
    # telling the two apart).
    assert api.count("/api/tasking/orders/details") == 2


async def test_unknown_order_fails_its_own_trigger_only() -> None:
    other = "9c1d2e3f-0000-4000-8000-000000000001"
    unknown = "9c1d2e3f-0000-4000-8000-00000000dead"
    api = FakeApi(orders={other: order(other, "Processing")})
    with fake_api(api):
        good = asyncio.ensure_future(first_event(trigger(other)))
        bad = await first_event(trigger(unknown))
        assert bad["status"] == "error" and bad["retryable"] is False and unknown in bad["message"]
        assert not good.done()
        api.set_status(other, "Completed")
        assert (await good)["status"] == "success"


async def test_many_triggers_share_one_request_per_interval_and_one_client() -> None:
    guids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(50)]
    api = FakeApi(orders={g: order(g, "Processing") for g in guids})
    interval = 0.05
    with fake_api(api):
        tasks = [
            asyncio.ensure_future(first_event(trigger(g, poll_interval=interval, max_poll_interval=interval)))
            for g in guids
        ]
        await asyncio.sleep(0.01)
        assert _polling.active_pollers() == 1 and _polling.active_clients() == 1
        started = time.monotonic()
        await asyncio.sleep(interval * 10)
        elapsed = time.monotonic() - started
        polls = api.count("/api/tasking/orders")
        # ~1 request per interval for all 50 triggers (not 50 per interval)
        assert polls <= elapsed / interval + 2
        assert polls >= 5
        for g in guids:
            api.set_status(g, "Completed")
        events = await asyncio.gather(*tasks)
    assert {e["status"] for e in events} == {"success"}
    # Waiting: nothing but list requests; finishing: one details read per wait, for its record.
    assert api.count("/api/tasking/orders/details") == len(guids)
    assert len(api.requests) == api.count("/api/tasking/orders") + len(guids)
    await asyncio.sleep(0.01)
    assert _polling.active_pollers() == 0 and _polling.active_clients() == 0
    assert api.closed == 1  # the one shared client was closed once


async def test_backoff_grows_the_interval_up_to_the_cap() -> None:
    api = FakeApi(orders={GUID: order(GUID, "Processing")})
    with fake_api(api):
        task = asyncio.ensure_future(
            first_event(trigger(poll_interval=0.01, max_poll_interval=0.08, backoff_factor=2.0))
        )
        await asyncio.sleep(0.6)
        polls = api.count("/api/tasking/orders")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # constant 0.01 s would be ~60 polls; 0.01, 0.02, 0.04, then 0.08 each gives about 9
    assert 5 <= polls <= 12


async def test_cancelled_triggers_leave_and_last_one_stops_the_poller() -> None:
    guids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(3)]
    api = FakeApi(orders={g: order(g, "Processing") for g in guids})
    with fake_api(api):
        tasks = [asyncio.ensure_future(first_event(trigger(g))) for g in guids]
        await asyncio.sleep(0.1)
        tasks[0].cancel()
        tasks[1].cancel()
        await asyncio.sleep(0.05)
        assert _polling.active_pollers() == 1
        assert _polling.active_clients() == 1
        before = api.count("/api/tasking/orders")
        await asyncio.sleep(0.1)
        assert api.count("/api/tasking/orders") > before  # still polling for the one left
        tasks[2].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0.05)
        assert _polling.active_pollers() == 0
        assert _polling.active_clients() == 0
        assert api.closed == 1
        after = api.count("/api/tasking/orders")
        await asyncio.sleep(0.1)
        assert api.count("/api/tasking/orders") == after  # stopped


async def test_new_trigger_after_poller_stopped_starts_a_fresh_one() -> None:
    api = FakeApi(orders={GUID: order(GUID, "Completed")})
    with fake_api(api):
        assert (await first_event(trigger()))["status"] == "success"
        await asyncio.sleep(0.02)  # the poller closes its client just after its last waiter left
        assert api.closed == 1
        assert (await first_event(trigger()))["status"] == "success"
        await asyncio.sleep(0.02)
    assert api.closed == 2
