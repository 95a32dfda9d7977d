"""The hook sends what the vendor's own clients send (issue 11): names, dates, defaults and parameters."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest

from airflow_provider_clearsky.exceptions import InvalidRequestError, NotFoundError
from airflow_provider_clearsky.models import GridImageryRequest, ImageryRequest, OrderRequest, TaskOrder
from airflow_provider_clearsky.models.catalog import TileSearchRequest
from airflow_provider_clearsky.operators.download import _date_text
from airflow_provider_clearsky.utils.coercion import parse_day
from airflow_provider_clearsky.utils.orders import target_statuses_for
from tests.support.hook_support import envelope, scripted_hook

POLYGON = "POLYGON ((10 55, 10.1 55, 10.1 55.1, 10 55.1, 10 55))"
OTHER = "POLYGON ((11 55, 11.1 55, 11.1 55.1, 11 55.1, 11 55))"
S123 = ["Sentinel1", "Sentinel2", "Landsat89"]
GUID = "0194d140-faa6-7b7a-a382-2d40abff0f9a"
TILE = "c3528462-02fc-4301-bb37-8d226b45f149"


@pytest.fixture(autouse=True)
def _connection(clearsky_connection: str) -> None:
    pass


def order(**overrides: object) -> OrderRequest:
    values: dict[str, object] = {
        "wkt": POLYGON,
        "satellite_constellations": S123,
        "model": "Stratus2",
        "image_frequency": 7,
        "date_from": "2025-06-01",
    }
    values.update(overrides)
    return OrderRequest(**values)


# ----------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("field", "value", "spelling"),
    [
        ("model", "Stratus-2", "Stratus2"),
        ("model", "stratus 2 fast", "Stratus2Fast"),
        ("satellite_constellations", ["Sentinel1", "Sentinel-2", "Landsat89"], "Sentinel2"),
        ("satellite_constellations", ["Sentinel1", "sentinel 2", "Landsat89"], "Sentinel2"),
        ("satellite_constellations", ["Sentinel1", "Sentinel2", "Landsat 8/9"], "Landsat89"),
    ],
)
def test_display_names_are_refused_naming_the_api_value(field: str, value: object, spelling: str) -> None:
    with pytest.raises(InvalidRequestError, match=rf"display name.*'{spelling}'") as raised:
        order(**{field: value})
    api_field = {"model": "Model", "satellite_constellations": "SatelliteConstellations"}[field]
    assert any(key.startswith(api_field) for key in raised.value.field_errors)
    with pytest.raises(InvalidRequestError, match="display name"):
        ImageryRequest(wkt=POLYGON, date="2025-06-08", **{field: value})


def test_api_values_and_unknown_names_pass_to_the_api() -> None:
    assert order(model="stratus2").model == "stratus2"  # case is the API's business (it ignores it)
    assert order(model="Nimbus-NDVI").model == "Nimbus-NDVI"  # not a display name of a known value


# ----------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    ("value", "day"),
    [
        ("2024-05-03T23:00:00-05:00", dt.date(2024, 5, 4)),
        ("2024-05-04T01:00:00+02:00", dt.date(2024, 5, 3)),
        ("2024-05-03T00:00:01Z", dt.date(2024, 5, 3)),
        (dt.datetime(2024, 5, 3, 23, tzinfo=dt.timezone(dt.timedelta(hours=-5))), dt.date(2024, 5, 4)),
        ("2024-05-03", dt.date(2024, 5, 3)),
    ],
)
def test_a_time_with_an_offset_is_its_utc_date_never_truncated(value: object, day: dt.date) -> None:
    assert ImageryRequest(wkt=POLYGON, date=value).date == day
    assert parse_day(value, "date") == day
    if isinstance(value, dt.datetime):
        assert _date_text(value) == day.isoformat()


def test_an_order_from_given_as_a_local_midnight_is_the_utc_month_start() -> None:
    assert order(date_from="2025-05-31T23:00:00-01:00").date_from == dt.date(2025, 6, 1)


@pytest.mark.parametrize("value", ["2024-05-03T25:00:00Z", "2024-05-03Tnoon"])
def test_a_malformed_time_is_refused_clearly(value: str) -> None:
    with pytest.raises(InvalidRequestError, match="ISO 8601"):
        ImageryRequest(wkt=POLYGON, date=value)
    with pytest.raises(ValueError, match=r"date: .* is not a date"):
        parse_day(value, "date")


# ----------------------------------------------------------------------------- ReferenceDate


def test_reference_date_defaults_to_the_vendor_clients_anchor_so_cadences_stay_in_step() -> None:
    june, july = order(date_from="2025-06-01"), order(date_from="2025-07-01")
    assert june.reference_date == july.reference_date == dt.date(2024, 1, 1)
    assert order(reference_date="2025-06-03").reference_date == dt.date(2025, 6, 3)


# ----------------------------------------------------------------------------- what is sent


def test_tile_search_by_area_sends_a_polygon_or_multipolygon() -> None:
    assert TileSearchRequest(wkt=f"GEOMETRYCOLLECTION ({POLYGON})").to_payload()["Wkt"].startswith("POLYGON")
    two = TileSearchRequest(wkt=f"GEOMETRYCOLLECTION ({POLYGON}, {OTHER})").to_payload()["Wkt"]
    assert two.startswith("MULTIPOLYGON")
    assert (
        TileSearchRequest(
            geo_json=json.loads('{"type": "Polygon", "coordinates": [[[10, 55], [10.1, 55], [10.1, 55.1], [10, 55]]]}')
        ).to_payload()["GeoJson"]["type"]
        == "Polygon"
    )


def test_download_bodies_carry_the_vendor_clients_settings() -> None:
    composite = ImageryRequest(wkt=POLYGON, date="2025-06-08").to_payload()
    assert composite["UtmGridForcePixelResolutionSize"] is True and composite["OldPixelSelectionMode"] is False
    assert composite["AutomaticOrderCreation"] is False
    chosen = ImageryRequest(
        wkt=POLYGON, date="2025-06-08", utm_grid_force_pixel_resolution_size=False, automatic_order_creation=True
    ).to_payload()
    assert chosen["UtmGridForcePixelResolutionSize"] is False and chosen["AutomaticOrderCreation"] is True
    tile = GridImageryRequest(tile_guid=TILE, date="2025-06-08", clip_reflectance=True).to_payload()
    assert tile["ClipReflectance"] is True and tile["TileGuid"] == TILE
    assert "OldPixelSelectionMode" not in tile and "AutomaticOrderCreation" not in tile  # composite settings
    assert "ClipReflectance" not in GridImageryRequest(tile_guid=TILE, date="2025-06-08").to_payload()


def test_estimate_sends_simulated_euro_usage_and_create_the_automatic_order_guid() -> None:
    hook, script, _ = scripted_hook(envelope({"CurrentMonthCost": 1.0}), envelope({"TaskOrderGuid": GUID}))
    hook.estimate_order(order(), simulated_euro_usage=1500.0)
    assert script.body(0)["SimulatedEuroUsage"] == 1500.0
    hook.create_order(order(), automatic_order_guid=GUID.upper())
    assert script.requests[1].url.params["automaticOrderGuid"] == GUID
    assert "SimulatedEuroUsage" not in script.body(1)
    with pytest.raises(InvalidRequestError, match="automaticOrderGuid"):
        hook.create_order(order(), automatic_order_guid="not-a-guid")
    assert len(script.requests) == 2


# ----------------------------------------------------------------------------- order details


@pytest.mark.parametrize("refusal", [405, 404])
def test_order_details_fall_back_to_get_when_post_is_not_served(refusal: int) -> None:
    hook, script, _ = scripted_hook(httpx.Response(refusal), envelope({"TaskOrders": [{"TaskOrderGuid": GUID}]}))
    assert hook.get_order(GUID).guid == GUID
    assert [r.method for r in script.requests] == ["POST", "GET"]
    assert script.requests[1].url.params["guids"] == GUID


def test_an_unknown_order_is_not_found_by_either_method() -> None:
    hook, script, _ = scripted_hook(envelope(None, status=404, code=404, message="Task order not found."))
    with pytest.raises(NotFoundError):
        hook.get_order(GUID)
    assert [r.method for r in script.requests] == ["POST", "GET"]


# ----------------------------------------------------------------------------- what the sensor waits for


def test_the_sensor_waits_for_what_was_ordered_not_for_a_rewritten_to() -> None:
    # A cancel may rewrite To on a real service; the caller knows the order was recurring.
    rewritten = TaskOrder.model_validate({"TaskOrderGuid": GUID, "To": "2026-06-30"})
    assert target_statuses_for(rewritten, None) == {"completed"}
    assert target_statuses_for(rewritten, None, recurring=True) == {"uptodate"}
    assert target_statuses_for(rewritten, ["Canceled"], recurring=True) == {"canceled"}
