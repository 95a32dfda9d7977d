"""The emulator is as strict as the service's docs and the vendor's clients: names, EPSG codes, dates, the
order-details methods and how order answers echo their area (issue 11)."""

from __future__ import annotations

import httpx
import pytest
import shapely
from rasterio.io import MemoryFile

from airflow_provider_clearsky.emulator.cli import build_parser, config_from_args
from airflow_provider_clearsky.emulator.config import EmulatorConfig
from airflow_provider_clearsky.emulator.handle import EmulatorHandle
from tests.integration.emulator.conftest import STRATUS2, data, download_body, error, order_body, produced_order

TRIANGLE = "POLYGON ((8.60 50.10, 8.65 50.10, 8.60 50.15, 8.60 50.10))"
TRIANGLE_BOX = shapely.box(8.60, 50.10, 8.65, 50.15)


@pytest.mark.parametrize(
    ("field", "value", "valid"),
    [
        ("Model", "Stratus-2", "Stratus2"),
        ("Model", "Stratus 2", "Stratus2"),
        ("SatelliteConstellations", ["Sentinel1", "Sentinel-2", "Landsat89"], "Sentinel2"),
        ("SatelliteConstellations", ["Sentinel1", "sentinel 2", "Landsat89"], "Sentinel2"),
    ],
)
@pytest.mark.parametrize("path", ["/api/tasking/orders/estimate", "/api/tasking/orders"])
def test_display_names_are_refused_with_the_valid_values(client: httpx.Client, path, field, value, valid) -> None:
    answer = error(client.post(path, json=order_body(**{field: value})), 400, 992)
    messages = " ".join(answer["Data"][field])
    assert valid in messages and "Valid values" in messages


def test_api_values_in_any_case_are_accepted(client: httpx.Client) -> None:
    data(client.post("/api/tasking/orders/estimate", json=order_body(Model="stratus2")))


def test_display_names_are_refused_on_downloads_too(client: httpx.Client, emu: EmulatorHandle) -> None:
    produced_order(client, emu)
    body = download_body(SatelliteConstellations=["Sentinel1", "Sentinel-2", "Landsat89"])
    answer = error(client.post("/api/satelliteimages/process/composite", json=body), 400, 992)
    assert "Sentinel2" in " ".join(answer["Data"]["SatelliteConstellations"])


@pytest.mark.parametrize("epsg", [25832, 3035])  # ETRS89 / UTM 32N, ETRS89 / LAEA Europe
def test_any_real_epsg_code_is_served(client: httpx.Client, emu: EmulatorHandle, epsg: int) -> None:
    produced_order(client, emu)
    resp = client.post("/api/satelliteimages/process/composite", json=download_body(EpsgProjection=epsg))
    assert resp.status_code == 200, resp.text[:300]
    with MemoryFile(resp.content).open() as ds:
        assert ds.crs.to_epsg() == epsg
        assert 205 < ds.width < 225  # 0.03 degrees of longitude at 50 N: about 2.15 km at 10 m


def test_an_epsg_code_that_does_not_exist_is_refused(client: httpx.Client, emu: EmulatorHandle) -> None:
    produced_order(client, emu)
    answer = error(
        client.post("/api/satelliteimages/process/composite", json=download_body(EpsgProjection=1)), 400, 992
    )
    assert "valid EPSG" in " ".join(answer["Data"]["EpsgProjection"])


def test_a_date_time_with_an_offset_is_its_utc_date(client: httpx.Client) -> None:
    # 2025-04-30T23:00:00-05:00 is 2025-05-01 in UTC: a valid first day of a month.
    order = data(client.post("/api/tasking/orders", json=order_body(From="2025-04-30T23:00:00-05:00")))
    assert order["From"] == "2025-05-01"


def test_bbox_echo_answers_each_polygons_bounding_box(client: httpx.Client, emu: EmulatorHandle) -> None:
    emu.control.set_order_geometry_echo("bbox")
    created = data(client.post("/api/tasking/orders", json=order_body(Wkt=f"GEOMETRYCOLLECTION ({TRIANGLE})")))
    listed = data(client.get("/api/tasking/orders"))["TaskOrders"][0]
    details = data(client.post("/api/tasking/orders/details", json={"Guids": [created["TaskOrderGuid"]]}))
    for echoed in (created["Wkt"], listed["Wkt"], details["TaskOrders"][0]["Wkt"]):
        geometry = shapely.from_wkt(echoed)
        assert geometry.geom_type == "GeometryCollection"
        assert geometry.geoms[0].equals(TRIANGLE_BOX)
    emu.control.reset()
    assert emu.control.orders() == []


def test_exact_echo_answers_the_area_as_sent(client: httpx.Client) -> None:
    created = data(client.post("/api/tasking/orders", json=order_body(Wkt=f"GEOMETRYCOLLECTION ({TRIANGLE})")))
    assert shapely.from_wkt(created["Wkt"]).geoms[0].equals(shapely.from_wkt(TRIANGLE))


@pytest.mark.parametrize(("served", "refused"), [("post", "GET"), ("get", "POST")])
def test_order_details_can_be_served_by_one_method_only(
    client: httpx.Client, emu: EmulatorHandle, served: str, refused: str
) -> None:
    guid = data(client.post("/api/tasking/orders", json=order_body()))["TaskOrderGuid"]
    emu.control.set_order_details_methods(served)
    post = client.post("/api/tasking/orders/details", json={"Guids": [guid]})
    get = client.get("/api/tasking/orders/details", params={"guids": guid})
    answers = {"POST": post, "GET": get}
    assert answers[refused].status_code == 405
    assert data(answers[served.upper()])["TaskOrders"][0]["TaskOrderGuid"] == guid


def test_a_collection_is_accepted_by_tile_search(client: httpx.Client) -> None:
    # No source says the service refuses one (the hook sends POLYGON/MULTIPOLYGON): documented choice.
    tiles = data(client.post("/api/tasking/search/tiles", json={"Wkt": f"GEOMETRYCOLLECTION ({TRIANGLE})"}))
    assert any(not t["MiniTile"] for t in tiles["Tiles"]) and any(t["MiniTile"] for t in tiles["Tiles"])


def test_switches_in_cli_and_config() -> None:
    args = build_parser().parse_args(["--order-geometry-echo", "bbox", "--order-details-methods", "get"])
    config = config_from_args(args)
    assert config.order_geometry_echo == "bbox" and config.order_details_methods == "get"
    with pytest.raises(ValueError, match="order_geometry_echo"):
        EmulatorConfig(order_geometry_echo="round")
    assert STRATUS2  # the shared constellations stay the API values


def test_the_fixture_runs_each_echo(clearsky_emulator_each_echo: EmulatorHandle) -> None:
    assert clearsky_emulator_each_echo.server.emulator.config.order_geometry_echo in ("exact", "bbox")
