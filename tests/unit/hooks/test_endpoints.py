"""Every hook method: the request it sends (method, path, headers, exact body) and the model it returns."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
import pytest

from airflow_provider_clearsky.models import (
    AvailableDatesRequest,
    GridImageryRequest,
    ImageryRequest,
    OrderRequest,
    TileSearchRequest,
)
from tests.conftest import FAKE_API_KEY
from tests.support.hook_support import envelope, scripted_hook

POLYGON = "POLYGON ((10 55, 10.1 55, 10.1 55.1, 10 55.1, 10 55))"
COLLECTION = "GEOMETRYCOLLECTION (POLYGON ((10 55, 10.1 55, 10.1 55.1, 10 55.1, 10 55)))"
TILE = "c3528462-02fc-4301-bb37-8d226b45f149"
ORDER_GUID = "0194d140-faa6-7b7a-a382-2d40abff0f9a"
S123 = ["Sentinel1", "Sentinel2", "Landsat89"]

ORDER = {
    "TaskOrderGuid": ORDER_GUID,
    "OrderingProcessStatus": "Review",
    "Model": "Stratus2",
    "From": "2025-06-01",
    "To": None,
    "SatelliteConstellations": S123,
    "CreatedDate": "2025-06-02T10:00:00Z",
}


def recurring_order() -> OrderRequest:
    return OrderRequest(
        wkt=POLYGON, satellite_constellations=S123, model="Stratus2", image_frequency=7, date_from="2025-06-01"
    )


EXPECTED_ORDER_BODY = {
    "Wkt": COLLECTION,
    "GeoJson": None,
    "TileGuids": None,
    "MiniTileGuids": None,
    "SatelliteConstellations": S123,
    "Model": "Stratus2",
    "StorageMonths": 1,
    "ApiRequests": 1,
    "ImageFrequency": 7,
    "ReferenceDate": "2024-01-01",  # the vendor client's default anchor
    "From": "2025-06-01",
    "To": None,
}

IMAGERY = ImageryRequest(wkt=POLYGON, date="2025-06-08", bandnames="B4,B3,B2", resolution=20, epsg_projection=32632)


@pytest.fixture(autouse=True)
def _connection(clearsky_connection: str) -> None:
    """Every test here talks to a scripted transport behind the ``clearsky_default`` connection."""


# (hook method, args, kwargs, HTTP method, path, query, JSON body or None, answer Data, check on result)
CASES: list[tuple[str, tuple[Any, ...], dict[str, Any], str, str, dict[str, str], Any, Any, Any]] = [
    (
        "get_account_info",
        (),
        {},
        "GET",
        "/api/account/info",
        {},
        None,
        {"TenantId": "t1", "MaxConcurrentConnections": 3, "EuroCreditAmount": 12.5},
        lambda r: r.max_concurrent_connections == 3 and r.euro_credit_amount == 12.5,
    ),
    (
        "get_tasking_models",
        (),
        {},
        "GET",
        "/api/tasking/models",
        {},
        None,
        {
            "TaskingModels": [
                {
                    "Model": "Stratus2Fast",
                    "SupportedSatelliteConstellations": [
                        {"SatelliteConstellation": "Sentinel1", "Optional": False},
                        {"SatelliteConstellation": "Landsat89", "Optional": True},
                    ],
                }
            ]
        },
        lambda r: r[0].required_constellations == ["Sentinel1"] and r[0].optional_constellations == ["Landsat89"],
    ),
    (
        "search_tiles",
        (TileSearchRequest(wkt=POLYGON),),
        {},
        "POST",
        "/api/tasking/search/tiles",
        {},
        # a POLYGON, as the vendor's clients send (a collection is for orders and tile optimize)
        {"Wkt": POLYGON, "GeoJson": None, "TileGuids": None, "MiniTileGuids": None, "TileGuidForMiniTiles": None},
        {"Tiles": [{"Guid": TILE, "MiniTile": False, "Epsg": "32632", "DataGeogWkt": POLYGON}]},
        lambda r: r.tile_guids == [TILE] and r.tiles[0].epsg == "32632",
    ),
    (
        "optimize_tiles",
        (POLYGON,),
        {},
        "POST",
        "/api/tasking/tile/optimize",
        {},
        {"Wkt": COLLECTION},
        {"Tiles": [TILE], "MiniTiles": []},
        lambda r: r.tiles == [TILE],
    ),
    (
        "estimate_order",
        (recurring_order(),),
        {},
        "POST",
        "/api/tasking/orders/estimate",
        {},
        {**EXPECTED_ORDER_BODY, "SimulatedEuroUsage": None},
        {"CurrentMonthCost": 4.2, "NextMonthCost": 4.0, "ImageDates": ["2025-06-01", "2025-06-08"], "AreaKm2": 21.0},
        lambda r: r.current_month_total == 4.2 and r.image_dates == [dt.date(2025, 6, 1), dt.date(2025, 6, 8)],
    ),
    (
        "create_order",
        (recurring_order(),),
        {},
        "POST",
        "/api/tasking/orders",
        {},
        EXPECTED_ORDER_BODY,
        ORDER,
        lambda r: r.guid == ORDER_GUID and r.is_recurring and r.status == "Review",
    ),
    (
        "list_orders",
        (),
        {"recurring_only": True},
        "GET",
        "/api/tasking/orders",
        {"recurringOnly": "true", "getExpired": "false"},
        None,
        {"TaskOrders": [ORDER]},
        lambda r: [o.guid for o in r] == [ORDER_GUID],
    ),
    (
        "get_order_details",
        ([ORDER_GUID],),
        {},
        "POST",
        "/api/tasking/orders/details",
        {},
        {"Guids": [ORDER_GUID]},
        {"TaskOrders": [dict(ORDER, Tiles=[{"Guid": TILE, "Wkt": POLYGON}])]},
        lambda r: r[0].tiles == [TILE],
    ),
    (
        "get_order",
        (ORDER_GUID,),
        {},
        "POST",
        "/api/tasking/orders/details",
        {},
        {"Guids": [ORDER_GUID]},
        {"TaskOrders": [ORDER]},
        lambda r: r.guid == ORDER_GUID,
    ),
    (
        "cancel_order",
        (ORDER_GUID,),
        {},
        "DELETE",
        "/api/tasking/orders/cancel",
        {"taskOrderGuid": ORDER_GUID},
        None,
        None,
        lambda r: r == {"Data": None},
    ),
    (
        "search_available_dates",
        (AvailableDatesRequest(wkt=POLYGON, date_from="2025-06-01", until="2025-06-30"),),
        {},
        "POST",
        "/api/satelliteimages/search/available",
        {},
        {"Wkt": POLYGON, "GeoJson": None, "From": "2025-06-01", "Until": "2025-06-30"},
        {
            "ModelImageDates": [
                {
                    "Model": "Stratus2",
                    "SatelliteConstellations": S123,
                    "DatesByGeog": [
                        {"Wkt": "a", "Dates": ["2025-06-01", "2025-06-08"]},
                        {"Wkt": "b", "Dates": ["2025-06-08"]},
                    ],
                }
            ]
        },
        lambda r: r.dates_for("Stratus2", S123) == [dt.date(2025, 6, 8)],
    ),
    (
        "check_composite_available",
        (IMAGERY,),
        {},
        "POST",
        "/api/satelliteimages/process/composite/available",
        {},
        {
            "Wkt": POLYGON,
            "GeoJson": None,
            "Date": "2025-06-08",
            "UtmDataSelectionMode": "combined_utm",
            "SatelliteConstellations": S123,
            "Model": "Stratus2",
            "EpsgProjection": 32632,
            "Bandnames": "B4,B3,B2",
        },
        {"FullyAvailable": True, "OrdersCoverPolygon": True, "DataAvailableForUser": True},
        lambda r: r.is_ready(),
    ),
    (
        "estimate_composite",
        (IMAGERY,),
        {},
        "POST",
        "/api/satelliteimages/process/composite/estimate",
        {},
        {
            "Wkt": POLYGON,
            "GeoJson": None,
            "Date": "2025-06-08",
            "Model": "Stratus2",
            "SatelliteConstellations": S123,
            "Resolution": 20,
            "EpsgProjection": 32632,
            "Bandnames": "B4,B3,B2",
            "DataType": "INT16",
            "PixelSelectionMode": "intersect",
            "UtmDataSelectionMode": "combined_utm",
            "UtmGridForcePixelResolutionSize": True,  # the vendor client's defaults, sent explicitly
            "OldPixelSelectionMode": False,
            "AllowPartialImage": False,
            "AutomaticOrderCreation": False,
            "FileType": "tif",
        },
        {"AreaEstimateKm2": 77.1, "CreditEstimate": 8},
        lambda r: r.credit_estimate == 8,
    ),
]


def _check_request(request: httpx.Request, method: str, path: str, query: dict[str, str], body: Any) -> None:
    assert request.method == method
    assert request.url.path == path
    assert dict(request.url.params) == query
    assert request.headers["x-api-key"] == FAKE_API_KEY
    assert request.headers["user-agent"].startswith("airflow-provider-clearsky/")
    assert "apache-airflow/" in request.headers["user-agent"]
    if body is None:
        assert request.content == b""
    else:
        assert request.headers["content-type"] == "application/json"
        assert json.loads(request.content) == body


@pytest.mark.parametrize(
    ("name", "args", "kwargs", "method", "path", "query", "body", "data", "check"),
    CASES,
    ids=[case[0] for case in CASES],
)
def test_sync_method_sends_exact_request_and_parses_answer(name, args, kwargs, method, path, query, body, data, check):
    hook, script, _ = scripted_hook(envelope(data))
    result = getattr(hook, name)(*args, **kwargs)
    assert len(script.requests) == 1
    _check_request(script.requests[0], method, path, query, body)
    assert check(result)


@pytest.mark.parametrize(
    ("name", "args", "kwargs", "method", "path", "query", "body", "data", "check"),
    CASES,
    ids=[case[0] for case in CASES],
)
async def test_async_method_sends_the_same_request(name, args, kwargs, method, path, query, body, data, check):
    hook, script, _ = scripted_hook(envelope(data))
    result = await getattr(hook, f"a{name}")(*args, **kwargs)
    await hook.aclose()
    assert len(script.requests) == 1
    _check_request(script.requests[0], method, path, query, body)
    assert check(result)


def test_account_info_falls_back_to_the_2024_path():
    hook, script, _ = scripted_hook(
        httpx.Response(404), envelope({"Key": FAKE_API_KEY, "CreditAmount": 100.0, "MaxTotalBands": 12})
    )
    info = hook.get_account_info()
    assert [r.url.path for r in script.requests] == ["/api/account/info", "/api/apikey/info"]
    assert info.credit_amount == 100.0
    assert FAKE_API_KEY not in repr(info) and FAKE_API_KEY not in json.dumps(info.model_dump(mode="json"))


def test_camel_case_answers_are_read():
    hook, _, _ = scripted_hook(
        httpx.Response(
            200,
            json={
                "succeeded": True,
                "data": {"taskOrders": [{"taskOrderGuid": ORDER_GUID, "orderingProcessStatus": "UpToDate"}]},
            },
        )
    )
    assert hook.list_orders()[0].is_succeeded


def test_estimate_in_the_2025_shape_is_read():
    hook, _, _ = scripted_hook(
        envelope(
            {
                "CurrentMonthCosts": {"TotalCostEuro": 3.0, "CurrencyCode": "EUR"},
                "RecurringCostsEstimate": {"TotalCost": 2.5},
                "ImageDates": ["2025-06-01T00:00:00Z"],
                "Attribution": "Contains modified Copernicus Sentinel data",
            }
        )
    )
    estimate = hook.estimate_order(recurring_order())
    assert (estimate.current_month_total, estimate.next_month_total, estimate.currency) == (3.0, 2.5, "EUR")
    assert estimate.model_extra == {"Attribution": "Contains modified Copernicus Sentinel data"}


def test_create_grid_order_sends_tile_deduplication():
    hook, script, _ = scripted_hook(envelope(ORDER))
    order = OrderRequest(
        tile_guids=[TILE],
        satellite_constellations=S123,
        model="Stratus2",
        image_frequency=1,
        date_from="2025-06-01",
        date_to="2025-06-30",
    )
    hook.create_order(order, tile_deduplication=True)
    body = script.body()
    assert body["TileGuids"] == [TILE] and body["Wkt"] is None and body["TileDeduplication"] is True
    assert body["To"] == "2025-06-30"


def test_get_order_raises_not_found_for_a_missing_order():
    from airflow_provider_clearsky.exceptions import NotFoundError

    hook, _, _ = scripted_hook(envelope({"TaskOrders": []}))
    with pytest.raises(NotFoundError, match=ORDER_GUID):
        hook.get_order(ORDER_GUID)


def test_composite_download_streams_with_the_file_name_and_length():
    payload = b"II*\x00" + bytes(range(256)) * 64
    hook, script, _ = scripted_hook(
        httpx.Response(
            200,
            content=payload,
            headers={
                "content-type": "application/octet-stream",
                "content-disposition": 'attachment; filename="../../etc/composite_2025-06-08.tif"',
            },
        )
    )
    request = IMAGERY.model_copy(update={"upload_url": None})
    with hook.stream_composite(request) as download:
        received = b"".join(download.iter_bytes(1000))
    assert received == payload
    assert download.filename == "composite_2025-06-08.tif"  # never a path outside the destination
    assert download.content_length == len(payload) and not download.uploaded
    assert script.requests[0].url.path == "/api/satelliteimages/process/composite"
    assert script.body()["UploadUrl"] is None


def test_upload_url_is_sent_only_with_the_download_and_201_means_uploaded():
    signed = "https://bucket.example/obj.tif?X-Signature=s3cr3t"
    hook, script, _ = scripted_hook(envelope({"FullyAvailable": True}), httpx.Response(201))
    request = ImageryRequest(wkt=POLYGON, date="2025-06-08", upload_url=signed)
    hook.check_composite_available(request)
    with hook.stream_composite(request) as download:
        assert download.uploaded
    assert "UploadUrl" not in script.body(0)
    assert script.body(1)["UploadUrl"] == signed
    assert signed not in repr(request)


def test_tile_and_minitile_downloads_use_their_endpoints():
    hook, script, _ = scripted_hook(httpx.Response(200, content=b"tif", headers={"content-type": "image/tiff"}))
    with hook.stream_tile(GridImageryRequest(tile_guid=TILE, date="2025-06-08", level=2)) as download:
        assert b"".join(download.iter_bytes()) == b"tif"
    with hook.stream_tile(GridImageryRequest(mini_tile_guid=ORDER_GUID, date="2025-06-08")):
        pass
    assert [r.url.path for r in script.requests] == [
        "/api/satelliteimages/process/tile",
        "/api/satelliteimages/process/minitile",
    ]
    assert script.body(0)["TileGuid"] == TILE and script.body(0)["Level"] == 2 and "Wkt" not in script.body(0)
    assert script.body(1)["MiniTileGuid"] == ORDER_GUID


async def test_async_download_streams():
    hook, _, _ = scripted_hook(httpx.Response(200, content=b"x" * 5000, headers={"content-type": "image/tiff"}))
    async with hook.astream_composite(IMAGERY) as download:
        chunks = [chunk async for chunk in download.aiter_bytes(1024)]
    await hook.aclose()
    assert b"".join(chunks) == b"x" * 5000


def test_no_client_and_no_io_in_init(monkeypatch):
    from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook

    monkeypatch.delenv("AIRFLOW_CONN_CLEARSKY_DEFAULT")
    hook = ClearSkyHook("does_not_exist")  # the connection is read on first use, not here
    assert "client" not in hook.__dict__ and hook._async_client is None
