"""Unit tests of ClearSkyImageAvailabilityTrigger and its readiness rules, on a scripted transport."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

import pytest

from airflow_provider_clearsky.triggers import _polling
from airflow_provider_clearsky.triggers.availability import (
    AvailabilitySpec,
    ClearSkyImageAvailabilityTrigger,
)
from tests.unit.triggers.fake_api import FakeApi, fail, fake_api, ok, until

AOI = "POLYGON ((10 50, 10.1 50, 10.1 50.1, 10 50.1, 10 50))"
FAST = {"poll_interval": 0.02, "max_poll_interval": 0.02}


@pytest.fixture(autouse=True)
def _conn(clearsky_connection: str) -> None:
    """Triggers read the (dead-port) connection; the transport never reaches it."""


def flags(state: str) -> dict[str, bool]:
    """composite/available answers for each state."""
    base = {
        "FullyAvailable": False,
        "PartiallyAvailable": False,
        "OrdersCoverPolygon": True,
        "DataAvailableForUser": True,
        "DataOnZoneDataFrequencyDate": True,
        "AnyImageWithinStorageMonths": True,
    }
    if state == "ready":
        base["FullyAvailable"] = True
    elif state == "partial":
        base["PartiallyAvailable"] = True
    elif state == "not_covered":
        base["OrdersCoverPolygon"] = False
    elif state == "not_scheduled":
        base["DataOnZoneDataFrequencyDate"] = False
        base["AnyImageWithinStorageMonths"] = False
    elif state == "expired":
        base["AnyImageWithinStorageMonths"] = False
    return base


class Imagery:
    """Per-date states the fake API answers with; unknown dates are 'not_scheduled'."""

    def __init__(self, states: dict[str, str]) -> None:
        self.states = dict(states)
        self.checked: list[str] = []

    def available(self, body: dict[str, Any]) -> Any:
        day = body["Date"][:10]
        self.checked.append(day)
        state = self.states.get(day, "not_scheduled")
        if state == "1006":
            return fail(400, 1006, "not covered by an order")
        return ok(flags(state))

    def search(self, body: dict[str, Any]) -> Any:
        produced = sorted(d for d, s in self.states.items() if s == "ready")
        return ok(
            {
                "ModelImageDates": [
                    {
                        "Model": "Stratus2",
                        "SatelliteConstellations": ["Sentinel1", "Sentinel2", "Landsat89"],
                        "DatesByGeog": [{"Wkt": AOI, "Dates": produced}],
                    }
                ]
            }
        )


def spec(**kwargs: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"wkt": AOI, **kwargs}
    if "dates" in values:
        values["dates"] = tuple(dt.date.fromisoformat(d) for d in values["dates"])
    for key in ("date_from", "date_to"):
        if key in values:
            values[key] = dt.date.fromisoformat(values[key])
    return AvailabilitySpec(**values).to_json()


def trigger(**kwargs: Any) -> ClearSkyImageAvailabilityTrigger:
    poll = {k: kwargs.pop(k) for k in ("deadline", "poll_interval", "max_poll_interval") if k in kwargs}
    return ClearSkyImageAvailabilityTrigger(spec=spec(**kwargs), **{**FAST, **poll})


async def first_event(t: ClearSkyImageAvailabilityTrigger, limit: float = 5.0) -> dict:
    events = []

    async def collect() -> None:
        async for event in t.run():
            events.append(event.payload)

    await asyncio.wait_for(collect(), limit)
    assert len(events) == 1, events
    return events[0]


def api_for(imagery: Imagery, **kwargs: Any) -> FakeApi:
    return FakeApi(availability=imagery.available, search=imagery.search, **kwargs)


def test_serialize_round_trip() -> None:
    t = ClearSkyImageAvailabilityTrigger(
        spec=spec(date_from="2025-06-01", date_to="2025-06-30", ready_when="any", allow_partial=True),
        clearsky_conn_id="c",
        deadline=1.5,
        poll_interval=5,
        max_poll_interval=50,
        backoff_factor=2,
    )
    path, kwargs = t.serialize()
    assert path == "airflow_provider_clearsky.triggers.availability.ClearSkyImageAvailabilityTrigger"
    import json

    assert json.loads(json.dumps(kwargs)) == kwargs  # plain JSON primitives
    assert ClearSkyImageAvailabilityTrigger(**kwargs).serialize() == (path, kwargs)
    assert AvailabilitySpec.from_json(kwargs["spec"]).to_json() == kwargs["spec"]


async def test_all_dates_wait_until_every_date_is_ready() -> None:
    imagery = Imagery({"2025-06-01": "ready", "2025-06-08": "pending"})
    with fake_api(api_for(imagery)):
        task = asyncio.ensure_future(first_event(trigger(dates=["2025-06-01", "2025-06-08"])))
        await until(lambda: imagery.checked.count("2025-06-08") >= 2)
        assert not task.done()
        imagery.states["2025-06-08"] = "ready"
        event = await task
    assert event["status"] == "success"
    assert event["dates"] == ["2025-06-01", "2025-06-08"]
    # the ready date is not asked again; the pending one is, each poll
    assert imagery.checked.count("2025-06-01") == 1
    assert imagery.checked.count("2025-06-08") >= 2


async def test_any_returns_the_dates_ready_so_far() -> None:
    imagery = Imagery({"2025-06-01": "pending", "2025-06-08": "ready"})
    with fake_api(api_for(imagery)):
        event = await first_event(trigger(dates=["2025-06-01", "2025-06-08"], ready_when="any"))
    assert event == {**event, "status": "success", "dates": ["2025-06-08"], "pending": ["2025-06-01"]}


async def test_partial_only_when_allowed() -> None:
    imagery = Imagery({"2025-06-01": "partial"})
    with fake_api(api_for(imagery)):
        assert (await first_event(trigger(dates=["2025-06-01"], allow_partial=True)))["status"] == "success"
        event = await first_event(trigger(dates=["2025-06-01"], deadline=time.time() + 0.1))
    assert event["status"] == "timeout" and event["pending"] == ["2025-06-01"]


@pytest.mark.parametrize(
    ("state", "words"),
    [
        ("expired", "storage period"),
        ("not_covered", "no order covers"),
        ("1006", "no order covers"),
        ("not_scheduled", "produces an image on this date"),
    ],
)
async def test_unreachable_date_fails_fast_in_all_mode(state: str, words: str) -> None:
    imagery = Imagery({"2025-06-01": "ready", "2025-06-08": state})
    with fake_api(api_for(imagery)):
        event = await first_event(trigger(dates=["2025-06-01", "2025-06-08"]))
    assert event["status"] == "failure"
    assert "2025-06-08" in event["message"] and words in event["message"]


async def test_any_mode_ignores_unreachable_dates_while_one_can_still_come() -> None:
    imagery = Imagery({"2025-06-01": "expired", "2025-06-08": "pending"})
    with fake_api(api_for(imagery)):
        task = asyncio.ensure_future(first_event(trigger(dates=["2025-06-01", "2025-06-08"], ready_when="any")))
        await until(lambda: imagery.checked.count("2025-06-08") >= 2)
        assert not task.done()
        imagery.states["2025-06-08"] = "ready"
        assert (await task)["dates"] == ["2025-06-08"]
    imagery = Imagery({"2025-06-01": "expired", "2025-06-08": "not_covered"})
    with fake_api(api_for(imagery)):
        event = await first_event(trigger(dates=["2025-06-01", "2025-06-08"], ready_when="any"))
    assert event["status"] == "failure" and "2025-06-01" in event["message"] and "2025-06-08" in event["message"]


async def test_window_counts_only_image_dates_and_rechecks_only_produced_ones() -> None:
    imagery = Imagery({"2025-06-02": "ready", "2025-06-09": "pending", "2025-06-16": "pending"})
    api = api_for(imagery)
    with fake_api(api):
        task = asyncio.ensure_future(first_event(trigger(date_from="2025-06-01", date_to="2025-06-30")))
        await until(lambda: api.count("/api/satelliteimages/search/available") >= 2)
        assert not task.done()
        assert len(imagery.checked) == 30  # one pass over every day of the window, then discovery only
        imagery.states["2025-06-09"] = "ready"
        await until(lambda: "2025-06-09" in imagery.checked[30:])
        await asyncio.sleep(0.05)
        assert not task.done()
        imagery.states["2025-06-16"] = "ready"
        event = await task
    assert event["status"] == "success"
    assert event["dates"] == ["2025-06-02", "2025-06-09", "2025-06-16"]
    assert len(imagery.checked) == 32  # plus exactly one check per date once search listed it


async def test_window_any_and_window_failures() -> None:
    with fake_api(api_for(Imagery({"2025-06-09": "pending", "2025-06-16": "ready"}))):
        event = await first_event(trigger(date_from="2025-06-01", date_to="2025-06-30", ready_when="any"))
    assert event["dates"] == ["2025-06-16"]
    with fake_api(api_for(Imagery({}))):
        event = await first_event(trigger(date_from="2025-06-01", date_to="2025-06-30"))
    assert event["status"] == "failure" and "no order covering the area produces an image" in event["message"]
    with fake_api(api_for(Imagery({f"2025-06-{d:02d}": "not_covered" for d in range(1, 31)}))):
        event = await first_event(trigger(date_from="2025-06-01", date_to="2025-06-30"))
    assert event["status"] == "failure" and "no order covers" in event["message"]
    with fake_api(api_for(Imagery({"2025-06-02": "expired", "2025-06-09": "ready"}))):
        event = await first_event(trigger(date_from="2025-06-01", date_to="2025-06-30"))
    assert event["status"] == "failure" and "2025-06-02" in event["message"]


async def test_transient_errors_are_waited_out() -> None:
    imagery = Imagery({"2025-06-01": "ready"})
    api = api_for(imagery, faults=[fail(503, None, "down"), fail(429, None, "slow")])
    with fake_api(api):
        event = await first_event(trigger(dates=["2025-06-01"]))
    assert event["status"] == "success"
    assert len(api.requests) == 3


async def test_authentication_error_fails_fast() -> None:
    api = api_for(Imagery({"2025-06-01": "pending"}), faults=[fail(403, None, "revoked")])
    with fake_api(api):
        event = await first_event(trigger(dates=["2025-06-01"]))
    assert event["status"] == "error" and event["retryable"] is False


async def test_deadline() -> None:
    api = api_for(Imagery({"2025-06-01": "pending"}))
    with fake_api(api):
        started = time.monotonic()
        event = await first_event(trigger(dates=["2025-06-01"], deadline=time.time() + 0.12))
        assert 0.1 < time.monotonic() - started < 1
        assert event["status"] == "timeout" and event["pending"] == ["2025-06-01"]
        event = await first_event(trigger(dates=["2025-06-01"], deadline=time.time() - 5))
        assert event["status"] == "timeout"
    await asyncio.sleep(0.01)
    assert _polling.active_clients() == 0


async def test_triggers_share_one_client() -> None:
    imagery = Imagery({"2025-06-01": "pending"})
    api = api_for(imagery)
    with fake_api(api):
        tasks = [asyncio.ensure_future(first_event(trigger(dates=["2025-06-01"]))) for _ in range(5)]
        await until(lambda: len(imagery.checked) >= 5)
        assert _polling.active_clients() == 1
        imagery.states["2025-06-01"] = "ready"
        events = await asyncio.gather(*tasks)
    assert all(e["status"] == "success" for e in events)
    await asyncio.sleep(0.01)
    assert _polling.active_clients() == 0 and api.closed == 1


def test_spec_rejects_bad_combinations() -> None:
    with pytest.raises(ValueError, match="either dates"):
        AvailabilitySpec(wkt=AOI)
    with pytest.raises(ValueError, match="before date_from"):
        AvailabilitySpec(wkt=AOI, date_from=dt.date(2025, 6, 30), date_to=dt.date(2025, 6, 1))
    with pytest.raises(ValueError, match="ready_when"):
        AvailabilitySpec(wkt=AOI, dates=(dt.date(2025, 6, 1),), ready_when="most")
    with pytest.raises(ValueError, match="longer than"):
        AvailabilitySpec(wkt=AOI, date_from=dt.date(2024, 1, 1), date_to=dt.date(2025, 6, 1))


async def test_known_states_from_the_worker_are_never_asked_again() -> None:
    imagery = Imagery({"2025-06-01": "ready", "2025-06-08": "ready", "2025-06-15": "not_scheduled"})
    api = api_for(imagery)
    t = trigger(dates=["2025-06-01", "2025-06-08"])
    t = ClearSkyImageAvailabilityTrigger(**{**t.serialize()[1], "known_states": {"2025-06-01": "ready"}})
    _, kwargs = t.serialize()
    assert kwargs["known_states"] == {"2025-06-01": "ready"}  # survives the trip through the database
    with fake_api(api):
        event = await first_event(ClearSkyImageAvailabilityTrigger(**kwargs))
    assert event["status"] == "success" and event["dates"] == ["2025-06-01", "2025-06-08"]
    assert imagery.checked == ["2025-06-08"]  # the date the worker found ready is not asked about
    assert api.count("/api/tasking/orders") == 0


async def test_window_first_pass_asks_only_about_the_days_the_orders_schedule() -> None:
    weekly = {
        "TaskOrderGuid": "o-1",
        "OrderingProcessStatus": "UpToDate",
        "Model": "Stratus2",
        "From": "2025-06-01",
        "To": None,
        "ImageFrequency": 7,
        "ReferenceDate": "2025-06-02",
        "Wkt": "GEOMETRYCOLLECTION (POLYGON ((9.9 49.9, 10.2 49.9, 10.2 50.2, 9.9 50.2, 9.9 49.9)))",
    }
    elsewhere = {
        **weekly,
        "TaskOrderGuid": "o-2",
        "ReferenceDate": "2025-06-01",
        "Wkt": "POLYGON ((0 0, 1 0, 1 1, 0 0))",
    }
    other_model = {**weekly, "TaskOrderGuid": "o-3", "Model": "Stratus3", "ReferenceDate": "2025-06-03"}
    image_dates = ["2025-06-02", "2025-06-09", "2025-06-16", "2025-06-23", "2025-06-30"]
    imagery = Imagery(dict.fromkeys(image_dates, "ready"))
    api = api_for(imagery, orders={"o-1": weekly, "o-2": elsewhere, "o-3": other_model})
    with fake_api(api):
        event = await first_event(trigger(date_from="2025-06-01", date_to="2025-06-30"))
    assert event["status"] == "success" and event["dates"] == image_dates
    assert imagery.checked == image_dates  # 5 checks, not 30
    assert api.requests[0] == ("GET", "/api/tasking/orders") and len(api.requests) == 1 + len(image_dates)


async def test_an_order_without_a_readable_schedule_means_every_day_is_asked() -> None:
    tile_order = {"TaskOrderGuid": "t-1", "Model": "Stratus2", "ImageFrequency": 7, "TileGuids": ["x"]}
    imagery = Imagery({"2025-06-03": "ready"})
    api = api_for(imagery, orders={"t-1": tile_order})
    with fake_api(api):
        event = await first_event(trigger(date_from="2025-06-01", date_to="2025-06-07"))
    assert event["dates"] == ["2025-06-03"]
    assert len(imagery.checked) == 7
