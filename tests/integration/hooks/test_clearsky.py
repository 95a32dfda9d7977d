"""The hook over real HTTP against the emulator on 127.0.0.1: every endpoint, the lifecycle, faults."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from airflow_provider_clearsky import exceptions as exc
from airflow_provider_clearsky.hooks._api import RetryPolicy
from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook
from airflow_provider_clearsky.models import (
    AvailableDatesRequest,
    GridImageryRequest,
    ImageryRequest,
    OrderRequest,
    TileSearchRequest,
)

pytestmark = pytest.mark.integration

AOI = "POLYGON ((10.02 55.02, 10.08 55.02, 10.08 55.07, 10.02 55.07, 10.02 55.02))"
S123 = ["Sentinel1", "Sentinel2", "Landsat89"]
START = dt.datetime(2025, 7, 10, 12, tzinfo=dt.UTC)


@pytest.fixture
def emulator(clearsky_emulator, monkeypatch):
    clearsky_emulator.set_airflow_connection(monkeypatch)
    clearsky_emulator.control.set_time(START)
    return clearsky_emulator


@pytest.fixture
def hook(emulator):
    waits: list[float] = []
    hook = ClearSkyHook(retry_policy=RetryPolicy(max_attempts=4, sleep=waits.append))
    hook.waits = waits  # type: ignore[attr-defined]
    yield hook
    hook.close()


def historical(**overrides) -> OrderRequest:
    settings = dict(
        wkt=AOI,
        model="Stratus2",
        satellite_constellations=S123,
        image_frequency=7,
        reference_date="2025-06-01",  # weekly from the 1st (the default anchor is the vendor client's 2024-01-01)
        date_from="2025-06-01",
        date_to="2025-06-30",
    )
    settings.update(overrides)
    return OrderRequest(**settings)


def test_account_models_and_tiles(hook):
    info = hook.get_account_info()
    assert info.max_concurrent_connections and info.euro_credit_amount and info.max_total_bands
    models = {m.model: m for m in hook.get_tasking_models()}
    assert models["Stratus2"].required_constellations == S123
    found = hook.search_tiles(TileSearchRequest(wkt=AOI))
    assert found.tile_guids
    minis = hook.search_tiles(TileSearchRequest(tile_guid_for_mini_tiles=found.tile_guids[0]))
    assert len(minis.mini_tile_guids) == 256
    optimized = hook.optimize_tiles(AOI)
    assert optimized.tiles or optimized.mini_tiles


def test_historical_order_from_estimate_to_download(hook, emulator, tmp_path):
    order = historical()
    estimate = hook.estimate_order(order)
    assert estimate.current_month_total and estimate.current_month_total > 0
    assert estimate.image_dates == [dt.date(2025, 6, d) for d in (1, 8, 15, 22, 29)]
    assert estimate.cancellation_date == dt.date(2025, 7, 31)
    created = hook.create_order(order)
    assert created.guid and not created.is_recurring
    assert [o.guid for o in hook.list_orders()] == [created.guid]

    emulator.control.advance(hours=4)
    done = hook.get_order(created.guid)
    assert done.is_succeeded, done.status

    dates = hook.search_available_dates(AvailableDatesRequest(wkt=AOI, date_from="2025-06-01", until="2025-06-30"))
    assert dates.dates_for("Stratus2", S123) == estimate.image_dates

    request = ImageryRequest(wkt=AOI, date="2025-06-08", bandnames="B4,B3,B2", resolution=40, epsg_projection=32632)
    assert hook.check_composite_available(request).is_ready()
    estimate = hook.estimate_composite(request)
    assert estimate.credit_estimate == 3  # ceil(21.3 km² / 10 km² per unit)
    units_before = hook.get_account_info().credit_amount
    path = tmp_path / "out.tif"
    with hook.stream_composite(request) as download, path.open("wb") as out:
        for chunk in download.iter_bytes():
            out.write(chunk)
    assert download.filename and download.filename.endswith(".tif")
    assert path.stat().st_size == download.content_length
    assert hook.get_account_info().credit_amount == units_before - estimate.credit_estimate

    import rasterio

    with rasterio.open(path) as image:
        assert image.count == 3
        assert image.crs.to_epsg() == 32632


def test_recurring_order_and_cancel_stops_renewal(hook):
    order = historical(date_to=None)
    created = hook.create_order(order)
    assert created.is_recurring
    assert [o.guid for o in hook.list_orders(recurring_only=True)] == [created.guid]
    hook.cancel_order(created.guid)
    after = hook.get_order(created.guid)
    assert after.is_recurring  # a cancel does not rewrite what was ordered (To stays null)
    assert after.model_extra and after.model_extra.get("RenewalStopped") is True  # the emulator's own flag


def test_tile_download(hook, emulator):
    tile = hook.search_tiles(TileSearchRequest(wkt=AOI)).tile_guids[0]
    order = OrderRequest(
        tile_guids=[tile],
        model="Stratus2",
        satellite_constellations=S123,
        image_frequency=7,
        reference_date="2025-06-01",
        date_from="2025-06-01",
        date_to="2025-06-30",
    )
    hook.create_order(order, tile_deduplication=True)
    emulator.control.advance(hours=4)
    with hook.stream_tile(GridImageryRequest(tile_guid=tile, date="2025-06-08", resolution=320)) as download:
        size = sum(len(chunk) for chunk in download.iter_bytes())
    assert size == download.content_length


def test_async_client_talks_to_the_emulator(hook, emulator):
    import asyncio

    async def scenario():
        created = await hook.acreate_order(historical())
        details = await hook.aget_order(created.guid)
        await hook.aclose()
        return created, details

    created, details = asyncio.run(scenario())
    assert details.guid == created.guid


@pytest.mark.parametrize(
    ("request_factory", "error_type"),
    [
        (lambda: ImageryRequest(wkt=AOI, date="2025-06-08"), exc.NotCoveredByOrderError),
        (
            lambda: ImageryRequest(
                wkt=AOI, date="2025-06-08", bandnames="B2,B3,B4,B5,B6,B7,B8,B8A,B11,B12,[B8_B4],[B3_B8],[B4_B3]"
            ),
            exc.LimitExceededError,
        ),
    ],
    ids=["1006-not-covered", "1005-too-many-bands"],
)
def test_api_errors_arrive_typed(hook, request_factory, error_type):
    with pytest.raises(error_type), hook.stream_composite(request_factory()):
        pass


def test_date_not_produced_yet_is_1002(hook):
    hook.create_order(historical())
    with pytest.raises(exc.NoImageryError), hook.stream_composite(ImageryRequest(wkt=AOI, date="2025-06-08")):
        pass


def test_wrong_key_is_an_authentication_error(emulator, monkeypatch):
    import json

    monkeypatch.setenv(
        "AIRFLOW_CONN_CLEARSKY_DEFAULT",
        json.dumps({"conn_type": "clearsky", "host": emulator.url, "password": "wrong-key-123"}),
    )
    with pytest.raises(exc.AuthenticationError):
        ClearSkyHook().get_account_info()
    ok, message = ClearSkyHook().test_connection()
    assert not ok
    assert "wrong-key-123" not in message


def test_insufficient_order_credits_is_994(hook, emulator):
    emulator.control.update_account(emulator.api_key, euro_credit_amount=0.01)
    with pytest.raises(exc.InsufficientCreditsError):
        hook.create_order(historical())
    assert emulator.control.order_count() == 0


@pytest.mark.parametrize("kind", ["429", "500", "502", "503", "504", "reset"])
def test_faults_are_retried_through_to_success(hook, emulator, kind):
    emulator.control.add_fault(kind, path="/api/tasking/orders", method="GET", times=2)
    assert hook.list_orders() == []
    assert emulator.control.request_count("/api/tasking/orders", method="GET") == 3


def test_retry_after_from_the_server_is_honoured(hook, emulator):
    emulator.control.add_fault("429", path="/api/tasking/models", retry_after=3, times=1)
    hook.get_tasking_models()
    assert hook.waits == [3.0]


def test_create_dropped_after_commit_is_outcome_unknown_and_never_resent(hook, emulator):
    emulator.control.add_fault("drop_after_commit", path="/api/tasking/orders", method="POST", times=1)
    with pytest.raises(exc.OrderOutcomeUnknownError):
        hook.create_order(historical())
    assert emulator.control.order_count() == 1  # the server made it; the hook did not make a second


def test_truncated_download_raises_and_a_second_try_gets_it_all(hook, emulator):
    # A body cut short has already used a download pass on the server: ApiRequests=2 leaves one for the retry.
    hook.create_order(historical(api_requests=2))
    emulator.control.advance(hours=4)
    request = ImageryRequest(wkt=AOI, date="2025-06-15", resolution=20)
    emulator.control.add_fault("truncate", path="/api/satelliteimages/process/composite", times=1)
    with pytest.raises(exc.TransportError), hook.stream_composite(request) as download:
        for _ in download.iter_bytes():
            pass
    with hook.stream_composite(request) as download:
        digest = hashlib.sha256(b"".join(download.iter_bytes())).hexdigest()
    assert digest
