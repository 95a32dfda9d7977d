"""Tiles, availability, composite estimate and GeoTIFF downloads (checked with rasterio)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import rasterio
from rasterio.io import MemoryFile
from rasterio.warp import transform_bounds

from airflow_provider_clearsky.emulator import DEMO_API_KEY
from airflow_provider_clearsky.emulator.geotiff import pixel_value
from airflow_provider_clearsky.emulator.handle import EmulatorHandle

from .conftest import AOI_WKT, INNER, STRATUS2, data, download_body, error, order_body, produced_order, utc

COMPOSITE = "/api/satelliteimages/process/composite"
INNER_BOUNDS = (8.61, 50.11, 8.64, 50.14)


def open_tif(resp: httpx.Response) -> Any:
    assert resp.status_code == 200, resp.text[:500]
    return MemoryFile(resp.content).open()


def test_search_tiles_all_modes(client: httpx.Client) -> None:
    tiles = data(client.post("/api/tasking/search/tiles", json={"Wkt": AOI_WKT, "GeoJson": None, "TileGuids": None}))[
        "Tiles"
    ]
    # the tile and the minitiles the area touches, told apart by MiniTile (the 2025 client's shape)
    whole = [t for t in tiles if not t["MiniTile"]]
    minis = [t for t in tiles if t["MiniTile"]]
    assert len(whole) == 1 and len(minis) == 4
    t = whole[0]
    assert t["Epsg"] == "32632" and t["DataGeogWkt"].startswith("POLYGON")
    assert all(m["Epsg"] == "32632" and m["DataGeogWkt"].startswith("POLYGON") for m in minis)
    # stable GUIDs
    again = data(
        client.post(
            "/api/tasking/search/tiles",
            json={
                "geojson": {"type": "Polygon", "coordinates": [[[8.6, 50.1], [8.65, 50.1], [8.65, 50.15], [8.6, 50.1]]]}
            },
        )
    )
    assert again["Tiles"][0]["Guid"] == t["Guid"]
    by_guid = data(client.post("/api/tasking/search/tiles", json={"TileGuids": [t["Guid"]]}))["Tiles"]
    assert by_guid == whole
    minis = data(client.post("/api/tasking/search/tiles", json={"TileGuidForMiniTiles": t["Guid"]}))
    assert len(minis["MiniTiles"]) == 256 and all(m["MiniTile"] for m in minis["Tiles"])
    assert [m["Guid"] for m in minis["Tiles"]] == minis["MiniTiles"]
    one = data(client.post("/api/tasking/search/tiles", json={"MiniTileGuids": minis["MiniTiles"][:1]}))["Tiles"]
    assert one[0]["MiniTile"] is True
    error(
        client.post("/api/tasking/search/tiles", json={"TileGuids": ["c3528462-02fc-4301-bb37-8d226b45f149"]}), 404, 404
    )
    error(client.post("/api/tasking/search/tiles", json={"TileGuids": minis["MiniTiles"][:1]}), 404, 404)
    error(client.post("/api/tasking/search/tiles", json={"Wkt": AOI_WKT, "TileGuids": [t["Guid"]]}), 400, 992)


def test_optimize(client: httpx.Client) -> None:
    small = data(client.post("/api/tasking/tile/optimize", json={"Wkt": AOI_WKT}))
    assert small["Tiles"] == [] and len(small["MiniTiles"]) >= 2
    big = "GEOMETRYCOLLECTION (POLYGON ((8.0 50.0, 8.45 50.0, 8.45 50.45, 8.0 50.45, 8.0 50.0)))"
    opt = data(client.post("/api/tasking/tile/optimize", json={"Wkt": big}))
    assert len(opt["Tiles"]) == 1 and opt["MiniTiles"] == []


def test_search_available_and_composite_available_flags(client: httpx.Client, emu: EmulatorHandle) -> None:
    body = download_body()
    flags = data(client.post("/api/satelliteimages/process/composite/available", json=body))
    assert flags["OrdersCoverPolygon"] is False and flags["FullyAvailable"] is False
    assert (
        data(client.post("/api/satelliteimages/search/available", json={"Wkt": INNER, "From": "2025-05-01"}))[
            "ModelImageDates"
        ]
        == []
    )
    data(client.post("/api/tasking/orders", json=order_body()))
    flags = data(client.post("/api/satelliteimages/process/composite/available", json=body))
    assert flags["OrdersCoverPolygon"] and flags["DataOnZoneDataFrequencyDate"] and not flags["FullyAvailable"]
    assert flags["AllImagesPredicted"] is False
    emu.control.advance(hours=3)
    flags = data(client.post("/api/satelliteimages/process/composite/available", json=body))
    expected = dict.fromkeys(
        [
            "IntersectedActiveZones",
            "IntersectedActiveZonesUtmEpsg",
            "FullyAvailable",
            "UncertaintyAvailable",
            "PolygonInDataArea",
            "DataAvailableForUser",
            "DataOnZoneDataFrequencyDate",
            "AllImagesPredicted",
            "AnyImageWithinStorageMonths",
            "OrdersCoverPolygon",
        ],
        True,
    )
    expected.update(PartiallyAvailable=False, PartiallyUncertaintyAvailable=False)
    assert flags == expected
    off_schedule = data(
        client.post("/api/satelliteimages/process/composite/available", json=download_body(Date="2025-05-08"))
    )
    assert off_schedule["DataOnZoneDataFrequencyDate"] is False and off_schedule["FullyAvailable"] is False
    half = "POLYGON ((8.62 50.11, 8.70 50.11, 8.70 50.14, 8.62 50.14, 8.62 50.11))"
    partial = data(client.post("/api/satelliteimages/process/composite/available", json=download_body(Wkt=half)))
    assert partial["PartiallyAvailable"] and not partial["FullyAvailable"] and not partial["OrdersCoverPolygon"]
    avail = data(
        client.post(
            "/api/satelliteimages/search/available",
            json={"Wkt": INNER, "From": "2025-05-01T00:00:01Z", "Until": "2025-05-20"},
        )
    )
    group = avail["ModelImageDates"][0]
    assert group["Model"] == "Stratus2" and group["SatelliteConstellations"] == STRATUS2
    assert group["DatesByGeog"][0]["Dates"] == ["2025-05-07", "2025-05-14"]
    # storage: May data is kept through June (StorageMonths=1)
    emu.control.set_time(utc(2025, 7, 1, 0, 0, 1))
    flags = data(client.post("/api/satelliteimages/process/composite/available", json=body))
    assert flags["AnyImageWithinStorageMonths"] is False and flags["FullyAvailable"] is False
    error(client.post(COMPOSITE, json=body), 400, 1002)


def test_composite_estimate(client: httpx.Client) -> None:
    est = data(client.post("/api/satelliteimages/process/composite/estimate", json=download_body()))
    assert 6 < est["AreaEstimateKm2"] < 8 and est["CreditEstimate"] == 1.0 and est["FileSizeEstimateMB"] > 0
    error(client.post("/api/satelliteimages/process/composite/estimate", json=download_body(Bandnames="B99")), 400, 992)


def test_composite_utm_auto_geotiff(client: httpx.Client, emu: EmulatorHandle) -> None:
    produced_order(client, emu)
    units = emu.control.account(DEMO_API_KEY)["CreditAmount"]
    r = client.post(COMPOSITE, json=download_body())
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"].startswith("attachment; filename=") and r.headers[
        "content-disposition"
    ].endswith('.tif"')
    assert int(r.headers["content-length"]) == len(r.content)
    with open_tif(r) as ds:
        assert ds.count == 3 and ds.dtypes == ("int16",) * 3 and ds.nodata == -32768
        assert ds.crs.to_epsg() == 32632
        assert ds.descriptions == ("B4", "B3", "B2")
        assert ds.res == (10.0, 10.0)
        exp = transform_bounds("EPSG:4326", "EPSG:32632", *INNER_BOUNDS, densify_pts=21)
        b = ds.bounds
        assert b.left <= exp[0] < b.left + 10 and b.right - 10 < exp[2] <= b.right
        assert b.bottom <= exp[1] < b.bottom + 10 and b.top - 10 < exp[3] <= b.top
        arr = ds.read()
        assert (arr != -32768).all()
        assert "PLACEHOLDER" in ds.tags()["ATTRIBUTION"]
    assert emu.control.account(DEMO_API_KEY)["CreditAmount"] == units - 1
    assert emu.control.download_count() == 1


def test_composite_explicit_utm_4326_uint8_and_index(client: httpx.Client, emu: EmulatorHandle) -> None:
    produced_order(client, emu, ApiRequests=5)
    with open_tif(
        client.post(COMPOSITE, json=download_body(EpsgProjection=32632, Resolution=20, Bandnames="all"))
    ) as ds:
        assert ds.count == 10 and ds.crs.to_epsg() == 32632 and ds.res == (20.0, 20.0)
    with open_tif(
        client.post(COMPOSITE, json=download_body(EpsgProjection=4326, DataType="uint8", Bandnames="B8,B4,[B8_B4]"))
    ) as ds:
        assert ds.count == 3 and ds.dtypes == ("uint8",) * 3 and ds.nodata == 0
        assert ds.crs.to_epsg() == 4326
        assert ds.descriptions == ("B8", "B4", "[B8_B4]")
        b = ds.bounds
        px = 10 / 111_320
        assert b.left <= 8.61 < b.left + px and b.right - px < 8.64 <= b.right
        assert b.bottom <= 50.11 < b.bottom + px and b.top - px < 50.14 <= b.top
        arr = ds.read()
        assert (arr != 0).all()
    # southern hemisphere UTM via explicit 327xx needs an order there
    south = "POLYGON ((18.40 -33.95, 18.45 -33.95, 18.45 -33.90, 18.40 -33.90, 18.40 -33.95))"
    produced_order(client, emu, Wkt=south)
    with open_tif(client.post(COMPOSITE, json=download_body(Wkt=south, EpsgProjection=47000, Resolution=40))) as ds:
        assert ds.crs.to_epsg() == 32734
        exp = transform_bounds("EPSG:4326", "EPSG:32734", 18.40, -33.95, 18.45, -33.90, densify_pts=21)
        assert ds.bounds.left <= exp[0] < ds.bounds.left + 40 and ds.bounds.top - 40 < exp[3] <= ds.bounds.top


def test_pixel_values_are_deterministic(client: httpx.Client, emu: EmulatorHandle) -> None:
    produced_order(client, emu)
    a = client.post(COMPOSITE, json=download_body()).content
    b = client.post(COMPOSITE, json=download_body()).content
    assert a == b
    with MemoryFile(a).open() as ds:
        arr = ds.read()
    seed = int(np.datetime64("2025-05-07").astype(int) + 719163) % 997
    assert arr[2, 5, 9] == pixel_value(9, 5, 2, seed, "int16")


def test_download_errors(client: httpx.Client, emu: EmulatorHandle) -> None:
    error(client.post(COMPOSITE, json=download_body()), 400, 1006)  # no order
    data(client.post("/api/tasking/orders", json=order_body(ApiRequests=1)))
    error(client.post(COMPOSITE, json=download_body()), 400, 1002)  # not produced yet
    emu.control.advance(hours=3)
    error(client.post(COMPOSITE, json=download_body(Date="2025-05-08")), 400, 1006)  # not an image date
    outside = "POLYGON ((9.61 50.11, 9.64 50.11, 9.64 50.14, 9.61 50.14, 9.61 50.11))"
    error(client.post(COMPOSITE, json=download_body(Wkt=outside)), 400, 1006)
    half = "POLYGON ((8.62 50.11, 8.70 50.11, 8.70 50.14, 8.62 50.14, 8.62 50.11))"
    error(client.post(COMPOSITE, json=download_body(Wkt=half)), 400, 1006)
    emu.control.update_account(DEMO_API_KEY, max_total_bands=3)
    error(client.post(COMPOSITE, json=download_body(Bandnames="all")), 400, 1005)
    emu.control.update_account(DEMO_API_KEY, max_composite_area_km2=5)
    error(client.post(COMPOSITE, json=download_body()), 400, 1004)
    emu.control.update_account(DEMO_API_KEY, max_composite_area_km2=10_000, credit_amount=0)
    error(client.post(COMPOSITE, json=download_body()), 400, 994)
    emu.control.update_account(DEMO_API_KEY, credit_amount=100)
    for bad in (
        {"Resolution": 15},
        {"EpsgProjection": 999999},  # no such EPSG code
        {"DataType": "float32"},
        {"FileType": "png"},
        {"Wkt": None},
        {"Date": None},
    ):
        error(client.post(COMPOSITE, json=download_body(**bad)), 400, 992)
    # partial image allowed
    with open_tif(client.post(COMPOSITE, json=download_body(Wkt=half, AllowPartialImage=True))) as ds:
        assert ds.count == 3
    # ApiRequests=1: the single pass is used; the next download is refused with 993
    error(client.post(COMPOSITE, json=download_body()), 400, 993)
    assert emu.control.download_count() == 1


def test_tile_and_minitile_downloads(client: httpx.Client, emu: EmulatorHandle) -> None:
    tile = data(client.post("/api/tasking/search/tiles", json={"Wkt": AOI_WKT}))["Tiles"][0]["Guid"]
    minis = data(client.post("/api/tasking/search/tiles", json={"TileGuidForMiniTiles": tile}))["MiniTiles"]
    produced_order(client, emu, Wkt=None, TileGuids=[tile])
    body = {
        "TileGuid": tile,
        "Date": "2025-05-14",
        "SatelliteConstellations": STRATUS2,
        "Model": "Stratus2",
        "Level": 2,
        "Harmonize": True,
        "ClipReflectance": None,
        "UploadUrl": None,
        "Resolution": 1280,
        "Bandnames": "rgb",
    }
    r = client.post("/api/satelliteimages/process/tile", json=body)
    with open_tif(r) as ds:
        assert ds.crs.to_epsg() == 32632 and ds.res == (1280.0, 1280.0)
        assert "tile_" in r.headers["content-disposition"]
    mbody = {
        "MiniTileGuid": minis[0],
        "Date": "2025-05-14",
        "Model": "Stratus2",
        "SatelliteConstellations": STRATUS2,
        "Resolution": 80,
        "EpsgProjection": 4326,
    }
    with open_tif(client.post("/api/satelliteimages/process/minitile", json=mbody)) as ds:
        assert ds.crs.to_epsg() == 4326 and ds.count == 10
    error(
        client.post(
            "/api/satelliteimages/process/tile", json={**body, "TileGuid": "c3528462-02fc-4301-bb37-8d226b45f149"}
        ),
        404,
        404,
    )
    error(client.post("/api/satelliteimages/process/minitile", json={**mbody, "MiniTileGuid": tile}), 404, 404)
    other = data(
        client.post("/api/tasking/search/tiles", json={"Wkt": "POLYGON ((20.1 50.1, 20.2 50.1, 20.2 50.2, 20.1 50.1))"})
    )["Tiles"][0]["Guid"]
    error(client.post("/api/satelliteimages/process/tile", json={**body, "TileGuid": other}), 400, 1006)


class _Sink(http.server.BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, str], bytes]] = []
    status = 200

    def do_PUT(self) -> None:
        n = int(self.headers["Content-Length"])
        _Sink.received.append((self.path, dict(self.headers), self.rfile.read(n)))
        self.send_response(_Sink.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def upload_sink() -> Iterator[str]:
    _Sink.received = []
    _Sink.status = 200
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_upload_url_put_and_201(client: httpx.Client, emu: EmulatorHandle, upload_sink: str) -> None:
    produced_order(client, emu, ApiRequests=3)
    url = upload_sink + "/bucket/out.tif?X-Amz-Signature=secretsig"
    r = client.post(COMPOSITE, json=download_body(UploadUrl=url))
    assert r.status_code == 201 and r.content == b""
    path, headers, body = _Sink.received[0]
    assert path.endswith("X-Amz-Signature=secretsig") and int(headers["Content-Length"]) == len(body)
    with MemoryFile(body).open() as ds:
        assert ds.count == 3
    assert "secretsig" not in repr(emu.control.request_log())
    _Sink.status = 403
    err = error(client.post(COMPOSITE, json=download_body(UploadUrl=url)), 400, 993)
    assert "secretsig" not in err["Error"]["Message"]


def test_large_composite_streams_with_exact_length(client: httpx.Client, emu: EmulatorHandle) -> None:
    big = "POLYGON ((8.0 50.0, 8.3 50.0, 8.3 50.2, 8.0 50.2, 8.0 50.0))"  # ~475 km2
    produced_order(client, emu, Wkt=f"GEOMETRYCOLLECTION ({big})")
    total = 0
    with client.stream("POST", COMPOSITE, json=download_body(Wkt=big, Bandnames="B4,B3,B2,B8")) as r:
        assert r.status_code == 200
        expected = int(r.headers["content-length"])
        for chunk in r.iter_bytes():
            total += len(chunk)
    assert total == expected > 35_000_000
    assert rasterio.__version__
