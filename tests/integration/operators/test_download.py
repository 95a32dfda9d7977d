"""Download operators against the emulator over real HTTP on 127.0.0.1 (``execute`` called directly).

DAG runs (mapped dates, Assets, secrets in rendered fields) are in ``test_download_dag.py``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.server
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import rasterio
from rasterio.io import MemoryFile

from airflow_provider_clearsky._compat import AirflowFailException
from airflow_provider_clearsky.emulator.handle import EmulatorHandle
from airflow_provider_clearsky.exceptions import RetryableTaskError
from airflow_provider_clearsky.operators.download import (
    ClearSkyDownloadCompositeOperator,
    ClearSkyDownloadTileOperator,
)

pytestmark = pytest.mark.integration

STRATUS2 = ["Sentinel1", "Sentinel2", "Landsat89"]
ORDER_WKT = "GEOMETRYCOLLECTION (POLYGON ((8.60 50.10, 8.65 50.10, 8.65 50.15, 8.60 50.15, 8.60 50.10)))"
# ~2.1 x 3.3 km inside the order; rgb at 10 m is a ~430 KB GeoTIFF.
FIELD = "POLYGON ((8.61 50.11, 8.64 50.11, 8.64 50.14, 8.61 50.14, 8.61 50.11))"
FIELD_GEOJSON = {
    "type": "Polygon",
    "coordinates": [[[8.61, 50.11], [8.64, 50.11], [8.64, 50.14], [8.61, 50.14], [8.61, 50.11]]],
}
# Image dates of the order: every 7 days from 2025-01-01 -> 2025-05-07, 14, 21, 28.
DATES = ["2025-05-07", "2025-05-14", "2025-05-21"]
COMPOSITE = "/api/satelliteimages/process/composite"
SECRET_MARK = "sig=TOP-SECRET-3b9f1c"


def set_connection(monkeypatch: pytest.MonkeyPatch, emu: EmulatorHandle, **extra: Any) -> None:
    conn = {**emu.connection_dict(), "extra": {"backoff_initial": 0, "backoff_max": 0, **extra}}
    monkeypatch.setenv("AIRFLOW_CONN_CLEARSKY_DEFAULT", json.dumps(conn))


def place_order(emu: EmulatorHandle, **overrides: Any) -> str:
    """A historical May-2025 order over the field (10 download passes per date), every date produced."""
    emu.control.set_time(dt.datetime(2025, 6, 10, 12, tzinfo=dt.UTC))
    body = {
        "Wkt": ORDER_WKT,
        "Model": "Stratus2",
        "SatelliteConstellations": STRATUS2,
        "StorageMonths": 1,
        "ApiRequests": 10,
        "ImageFrequency": 7,
        "ReferenceDate": "2025-01-01",
        "From": "2025-05-01",
        "To": "2025-05-31",
        **overrides,
    }
    with emu.client() as client:
        response = client.post("/api/tasking/orders", json=body)
    assert response.status_code == 200, response.text
    emu.control.advance(hours=3)
    return str(response.json()["Data"]["TaskOrderGuid"])


@pytest.fixture
def emu(clearsky_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorHandle]:
    set_connection(monkeypatch, clearsky_emulator)
    yield clearsky_emulator
    settled_log(clearsky_emulator)  # a streamed answer is logged late: keep it out of the next test's log


@pytest.fixture
def order_guid(emu: EmulatorHandle) -> str:
    return place_order(emu)


def composite(**kwargs: Any) -> ClearSkyDownloadCompositeOperator:
    options: dict[str, Any] = {"task_id": "download", "wkt": FIELD, "date": DATES[0], "bands": "rgb"}
    options.update(kwargs)
    return ClearSkyDownloadCompositeOperator(**options)


def local_path(uri: str) -> Path:
    assert uri.startswith("file://"), uri
    return Path(uri.removeprefix("file://"))


def settled_log(emu: EmulatorHandle) -> list[str]:
    """The emulator's request log once it stops growing (a streamed answer is logged after its last byte)."""
    seen = -1
    log = emu.control.request_log()
    while len(log) != seen:
        seen = len(log)
        time.sleep(0.05)
        log = emu.control.request_log()
    return [f"{entry['method']} {entry['path']}" for entry in log]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ---------------------------------------------------------------------------------------------- destinations


def test_download_to_local_folder_opens_with_rasterio_and_has_sidecar_and_stac(
    emu: EmulatorHandle, order_guid: str, tmp_path: Path
) -> None:
    uri = composite(destination=str(tmp_path / "imagery"), order_guid=order_guid, estimate_first=True).execute({})

    path = local_path(uri)
    assert path.parent == tmp_path / "imagery" and path.exists()
    with rasterio.open(path) as raster:
        assert raster.count == 3
        assert raster.dtypes == ("int16", "int16", "int16")
        assert raster.crs.to_epsg() == 32632  # 47000 picked UTM 32N for Frankfurt
    data = path.read_bytes()
    sidecar = json.loads((path.parent / (path.name + ".json")).read_text())
    assert sidecar["size"] == len(data) == os.path.getsize(path)
    assert sidecar["sha256"] == hashlib.sha256(data).hexdigest()
    assert sidecar["uri"] == uri and sidecar["file"] == path.name
    assert sidecar["order_guid"] == order_guid
    assert sidecar["source_filename"].startswith("composite_Stratus2_2025-05-07")
    assert sidecar["request"]["Date"] == "2025-05-07" and sidecar["request"]["Bandnames"] == "rgb"
    assert sidecar["request"]["Wkt"].startswith("POLYGON")
    assert "UploadUrl" not in sidecar["request"]
    assert sidecar["estimate"]["CreditEstimate"] >= 1
    assert "EMULATOR PLACEHOLDER" in sidecar["attribution"]["order:Attribution"]  # passed through unchanged
    assert sidecar["downloaded_at"].endswith("Z")

    stac = json.loads((path.parent / (path.name + ".stac.json")).read_text())
    assert stac["type"] == "Feature" and stac["stac_version"] == "1.0.0"
    assert stac["properties"]["datetime"] == "2025-05-07T00:00:00Z"
    assert stac["bbox"] == pytest.approx([8.61, 50.11, 8.64, 50.14])
    assert stac["geometry"]["type"] == "Polygon"
    assert stac["assets"]["data"]["href"] == f"./{path.name}"
    assert leftovers(path.parent) == sorted([path.name, path.name + ".json", path.name + ".stac.json"])
    assert emu.control.download_count() == 1


def test_download_to_memory_store(emu: EmulatorHandle, order_guid: str) -> None:
    import fsspec

    uri = composite(destination="memory://clearsky-tests/run1", geojson=FIELD_GEOJSON, wkt=None).execute({})

    assert uri.startswith("memory://clearsky-tests/run1/clearsky_composite_2025-05-07_Stratus2_10m_epsg47000_")
    fs = fsspec.filesystem("memory")
    path = uri.removeprefix("memory://")
    data = fs.cat_file(path)
    with MemoryFile(data) as memfile, memfile.open() as raster:
        assert raster.count == 3 and raster.crs.to_epsg() == 32632
    sidecar = json.loads(fs.cat_file(path + ".json"))
    assert sidecar["sha256"] == hashlib.sha256(data).hexdigest() and sidecar["size"] == len(data)
    assert [name for name in fs.ls("/clearsky-tests/run1", detail=False) if ".part" in name] == []

    # Never twice, on the object store too.
    assert composite(destination="memory://clearsky-tests/run1", geojson=FIELD_GEOJSON, wkt=None).execute({}) == uri
    assert emu.control.download_count() == 1


def test_filename_template_and_uint8_single_band(emu: EmulatorHandle, order_guid: str, tmp_path: Path) -> None:
    uri = composite(
        destination=str(tmp_path),
        filename="field_{date}_{model}_{resolution}m.tif",
        bands=["B8"],
        data_type="uint8",
        resolution="20",  # templated values arrive as text
        epsg="32632",
        write_stac=False,
    ).execute({})
    path = local_path(uri)
    assert path.name == "field_2025-05-07_Stratus2_20m.tif"
    with rasterio.open(path) as raster:
        assert raster.count == 1 and raster.dtypes == ("uint8",) and raster.res == (20.0, 20.0)
    assert not (tmp_path / (path.name + ".stac.json")).exists()


# ---------------------------------------------------------------------------------------------- never twice


def test_second_run_skips_without_any_request(emu: EmulatorHandle, order_guid: str, tmp_path: Path) -> None:
    first = composite(destination=str(tmp_path), estimate_first=True).execute({})
    requests = settled_log(emu)
    units = emu.control.account(emu.api_key)["CreditAmount"]

    second = composite(destination=str(tmp_path), estimate_first=True).execute({})

    assert second == first
    assert settled_log(emu) == requests  # not even the free account/estimate calls
    assert requests.count(f"POST {COMPOSITE}") == 1
    assert emu.control.download_count() == 1
    assert emu.control.account(emu.api_key)["CreditAmount"] == units


def test_existing_file_with_other_settings_is_not_replaced_without_overwrite(
    emu: EmulatorHandle, order_guid: str, tmp_path: Path
) -> None:
    uri = composite(destination=str(tmp_path), filename="field.tif").execute({})
    before = local_path(uri).read_bytes()

    with pytest.raises(AirflowFailException, match=r"other request settings.*overwrite=True"):
        composite(destination=str(tmp_path), filename="field.tif", bands="B8,B4").execute({})
    assert local_path(uri).read_bytes() == before
    assert emu.control.download_count() == 1

    composite(destination=str(tmp_path), filename="field.tif", bands="B8,B4", overwrite=True).execute({})
    assert emu.control.download_count() == 2
    with rasterio.open(local_path(uri)) as raster:
        assert raster.count == 2


def test_damaged_file_is_detected_by_checksum(emu: EmulatorHandle, order_guid: str, tmp_path: Path) -> None:
    uri = composite(destination=str(tmp_path)).execute({})
    path = local_path(uri)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # same size, different bytes
    path.write_bytes(bytes(data))

    with pytest.raises(AirflowFailException, match="SHA-256 differs"):
        composite(destination=str(tmp_path)).execute({})
    # verify_existing="size" trusts the size alone (cheaper on remote stores).
    assert composite(destination=str(tmp_path), verify_existing="size").execute({}) == uri
    assert emu.control.download_count() == 1


def test_foreign_file_without_sidecar_is_left_alone(emu: EmulatorHandle, order_guid: str, tmp_path: Path) -> None:
    (tmp_path / "field.tif").write_bytes(b"not ours")
    with pytest.raises(AirflowFailException, match="no readable sidecar"):
        composite(destination=str(tmp_path), filename="field.tif").execute({})
    assert (tmp_path / "field.tif").read_bytes() == b"not ours"
    assert settled_log(emu) == ["POST /api/tasking/orders"]  # placing the order, nothing since


# ---------------------------------------------------------------------------------------------- faults


def test_cut_short_body_leaves_no_file_and_the_retry_completes(
    emu: EmulatorHandle, order_guid: str, tmp_path: Path
) -> None:
    emu.control.add_fault("truncate", path=COMPOSITE, method="POST", bytes=100_000)

    with pytest.raises(RetryableTaskError) as raised:
        composite(destination=str(tmp_path), chunk_size=16_384).execute({})
    assert not isinstance(raised.value, AirflowFailException)  # transient: Airflow retries it
    assert leftovers(tmp_path) == []  # no final file, no sidecar, no temporary file

    uri = composite(destination=str(tmp_path)).execute({})
    with rasterio.open(local_path(uri)) as raster:
        assert raster.count == 3
    assert emu.control.download_count() == 2  # the cut-short attempt was charged too


def test_reset_connection_leaves_no_file_and_the_retry_completes(
    emu: EmulatorHandle, order_guid: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_connection(monkeypatch, emu, max_retries=0)  # surface the reset instead of retrying inside the hook
    emu.control.add_fault("reset", path=COMPOSITE, method="POST")

    with pytest.raises(RetryableTaskError) as raised:
        composite(destination=str(tmp_path)).execute({})
    assert not isinstance(raised.value, AirflowFailException)
    assert leftovers(tmp_path) == []

    uri = composite(destination=str(tmp_path)).execute({})
    assert local_path(uri).exists()
    assert emu.control.download_count() == 1


def test_a_reset_after_sending_is_left_to_the_task_retry(emu: EmulatorHandle, order_guid: str, tmp_path: Path) -> None:
    # After the request left, the client cannot tell a reset from a drop after the server charged: the hook
    # does not pay again on its own; the failure stays retryable and the task's retry downloads.
    emu.control.add_fault("reset", path=COMPOSITE, method="POST")
    with pytest.raises(RetryableTaskError, match=r"will be retried.*Connection reset") as raised:
        composite(destination=str(tmp_path)).execute({})
    assert not isinstance(raised.value, AirflowFailException)
    assert leftovers(tmp_path) == []
    uri = composite(destination=str(tmp_path)).execute({})
    assert local_path(uri).exists()
    settled_log(emu)
    assert emu.control.request_count(COMPOSITE, method="POST") == 2
    assert emu.control.download_count() == 1


def test_not_ordered_date_fails_for_good_and_leaves_nothing(emu: EmulatorHandle, tmp_path: Path) -> None:
    emu.control.set_time(dt.datetime(2025, 6, 10, 12, tzinfo=dt.UTC))  # no order at all
    with pytest.raises(AirflowFailException, match="code 1006"):
        composite(destination=str(tmp_path)).execute({})
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------------------------------------- cost and limits


def test_budget_refusal_before_download(emu: EmulatorHandle, order_guid: str, tmp_path: Path) -> None:
    with pytest.raises(AirflowFailException, match=r"max_processing_units.*cost 1 processing units"):
        composite(destination=str(tmp_path), max_processing_units=0.5).execute({})
    assert emu.control.request_count(COMPOSITE + "/estimate") == 1
    assert emu.control.request_count(COMPOSITE) == 0 and emu.control.download_count() == 0
    assert leftovers(tmp_path) == []

    composite(destination=str(tmp_path), max_processing_units="1").execute({})
    assert emu.control.download_count() == 1


ACCOUNT = "/api/account/info"
DETAILS = "/api/tasking/orders/details"


def test_band_limit_of_one_download_is_the_apis_refusal_and_costs_nothing(
    emu: EmulatorHandle, order_guid: str, tmp_path: Path
) -> None:
    emu.control.update_account(emu.api_key, max_total_bands=2)
    units = emu.control.account(emu.api_key)["CreditAmount"]
    with pytest.raises(AirflowFailException, match=r"bands: the API refused .*MaxTotalBands, code 1005.*fewer bands"):
        composite(destination=str(tmp_path)).execute({})
    assert emu.control.request_count(ACCOUNT) == 0  # one transfer: no account read first
    assert emu.control.request_count(COMPOSITE) == 1 and emu.control.download_count() == 0
    assert emu.control.account(emu.api_key)["CreditAmount"] == units  # the refusal charged nothing
    assert leftovers(tmp_path) == []


def test_area_limit_of_one_download_is_the_apis_refusal_and_costs_nothing(
    emu: EmulatorHandle, order_guid: str, tmp_path: Path
) -> None:
    emu.control.update_account(emu.api_key, max_composite_area_km2=5)  # the field is ~7.1 km²
    units = emu.control.account(emu.api_key)["CreditAmount"]
    with pytest.raises(AirflowFailException, match=r"wkt/geojson: the API refused .*code 1004.*split the area"):
        composite(destination=str(tmp_path)).execute({})
    assert emu.control.request_count(ACCOUNT) == 0
    assert emu.control.request_count(COMPOSITE) == 1 and emu.control.download_count() == 0
    assert emu.control.account(emu.api_key)["CreditAmount"] == units
    assert leftovers(tmp_path) == []


def test_limits_checked_before_any_download_when_an_estimate_is_made(
    emu: EmulatorHandle, order_guid: str, tmp_path: Path
) -> None:
    emu.control.update_account(emu.api_key, max_total_bands=2)
    with pytest.raises(AirflowFailException, match=r"bands: 'rgb' asks for 3 bands.*MaxTotalBands=2"):
        composite(destination=str(tmp_path), estimate_first=True).execute({})
    emu.control.update_account(emu.api_key, max_total_bands=12, max_composite_area_km2=5)
    with pytest.raises(AirflowFailException, match=r"area is about 7\.\d km².*MaxCompositeAreaKm2=5"):
        composite(destination=str(tmp_path), max_processing_units=100).execute({})
    assert emu.control.request_count(ACCOUNT) == 2
    assert emu.control.request_count(COMPOSITE) == 0 and emu.control.download_count() == 0


def test_order_details_of_the_run_give_the_sidecar_its_notices_without_reading_the_order(
    emu: EmulatorHandle, order_guid: str, tmp_path: Path
) -> None:
    from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook
    from airflow_provider_clearsky.triggers.order_status import order_record

    with ClearSkyHook() as hook:
        record = order_record(hook.get_order(order_guid))  # what ClearSkyOrderStatusSensor returns
    read_before = emu.control.request_count(DETAILS)

    uri = composite(destination=str(tmp_path), order_details=record).execute({})

    assert settled_log(emu)[-1:] == [f"POST {COMPOSITE}"]
    assert emu.control.request_count(DETAILS) == read_before and emu.control.request_count(ACCOUNT) == 0
    sidecar = json.loads(Path(str(local_path(uri)) + ".json").read_text())
    assert sidecar["order_guid"] == order_guid
    assert "EMULATOR PLACEHOLDER" in sidecar["attribution"]["order:Attribution"]  # as if read from the details
    stac = json.loads(Path(str(local_path(uri)) + ".stac.json").read_text())
    assert stac["properties"]["clearsky:attribution"] == sidecar["attribution"]
    assert stac["properties"]["clearsky:order_guid"] == order_guid


def test_order_details_are_what_the_run_read_the_order_is_not_read_again(
    emu: EmulatorHandle, order_guid: str, tmp_path: Path
) -> None:
    record = {"TaskOrderGuid": order_guid, "OrderingProcessStatus": "Completed"}  # a record without notices
    uri = composite(destination=str(tmp_path), order_details=record).execute({})
    assert emu.control.request_count(DETAILS) == 0
    sidecar = json.loads(Path(str(local_path(uri)) + ".json").read_text())
    assert sidecar["order_guid"] == order_guid
    assert not any(name.startswith("order:") for name in sidecar["attribution"])


def test_order_details_that_are_not_the_orders_record_fail_before_any_request(
    emu: EmulatorHandle, tmp_path: Path
) -> None:
    other = "0b9f3a52-5d7e-4c1e-9f5a-2d8c4b6a7e10"
    mine = "7d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    with pytest.raises(
        AirflowFailException, match=r"order_details: it is the record of order 0b9f.*order_guid is 7d1c"
    ):
        composite(destination=str(tmp_path), order_guid=mine, order_details={"TaskOrderGuid": other}).execute({})
    with pytest.raises(AirflowFailException, match=r"order_details: must be the order record .* not str"):
        composite(destination=str(tmp_path), order_details="{'TaskOrderGuid': 'x'}").execute({})
    with pytest.raises(AirflowFailException, match=r"order_details' TaskOrderGuid must be the order's GUID"):
        composite(destination=str(tmp_path), order_details={"TaskOrderGuid": "not-a-guid"}).execute({})
    assert settled_log(emu) == []


def test_bad_settings_fail_before_any_request(emu: EmulatorHandle, tmp_path: Path) -> None:
    with pytest.raises(AirflowFailException, match="resolution: must be one of 10, 20"):
        composite(destination=str(tmp_path), resolution=15).execute({})
    with pytest.raises(AirflowFailException, match=r"wkt: .*Point"):
        composite(destination=str(tmp_path), wkt="POINT (8 50)").execute({})
    with pytest.raises(AirflowFailException, match="give exactly one area"):
        composite(destination=str(tmp_path), geojson=FIELD_GEOJSON).execute({})
    with pytest.raises(AirflowFailException, match="destination: required"):
        composite().execute({})
    with pytest.raises(AirflowFailException, match=r"filename: .*unknown placeholder"):
        composite(destination=str(tmp_path), filename="{nope}.tif").execute({})
    with pytest.raises(AirflowFailException, match=r"filename: .*inside destination"):
        composite(destination=str(tmp_path), filename="../escape.tif").execute({})
    assert settled_log(emu) == []


# ---------------------------------------------------------------------------------------------- tiles


def test_tile_and_minitile_downloads(emu: EmulatorHandle, tmp_path: Path) -> None:
    with emu.client() as client:
        tile = client.post("/api/tasking/search/tiles", json={"Wkt": FIELD}).json()["Data"]["Tiles"][0]["Guid"]
        minis = client.post("/api/tasking/search/tiles", json={"TileGuidForMiniTiles": tile}).json()["Data"]
    mini = minis["MiniTiles"][0]
    place_order(emu, Wkt=None, TileGuids=None, MiniTileGuids=[mini])

    one = ClearSkyDownloadTileOperator(
        task_id="mini", minitile_guid=mini, date=DATES[0], bands="rgb", resolution=40, destination=str(tmp_path)
    ).execute({})
    assert isinstance(one, str) and f"clearsky_minitile_{mini}_2025-05-07" in one
    with rasterio.open(local_path(one)) as raster:
        assert raster.count == 3
    sidecar = json.loads(Path(str(local_path(one)) + ".json").read_text())
    assert sidecar["kind"] == "minitile" and sidecar["request"]["MiniTileGuid"] == mini
    stac = json.loads(Path(str(local_path(one)) + ".stac.json").read_text())
    assert stac["geometry"] is None and "bbox" not in stac

    listed = ClearSkyDownloadTileOperator(
        task_id="minis", minitile_guid=[mini], date=DATES[0], bands="rgb", resolution=40, destination=str(tmp_path)
    ).execute({})
    assert listed == [one]  # a list in, a list out; and skipped: already there
    assert emu.control.download_count() == 1


def test_several_tiles_are_checked_against_the_account_before_the_first_is_paid(
    emu: EmulatorHandle, tmp_path: Path
) -> None:
    with emu.client() as client:
        tile = client.post("/api/tasking/search/tiles", json={"Wkt": FIELD}).json()["Data"]["Tiles"][0]["Guid"]
        minis = client.post("/api/tasking/search/tiles", json={"TileGuidForMiniTiles": tile}).json()["Data"]
    pair = minis["MiniTiles"][:2]
    place_order(emu, Wkt=None, TileGuids=None, MiniTileGuids=pair)
    emu.control.update_account(emu.api_key, max_total_bands=2)

    with pytest.raises(AirflowFailException, match=r"bands: 'rgb' asks for 3 bands.*MaxTotalBands=2"):
        ClearSkyDownloadTileOperator(
            task_id="minis", minitile_guid=pair, date=DATES[0], bands="rgb", resolution=40, destination=str(tmp_path)
        ).execute({})
    assert emu.control.request_count(ACCOUNT) == 1
    assert emu.control.request_count("/api/satelliteimages/process/minitile") == 0
    assert emu.control.download_count() == 0


def test_a_minitile_above_the_area_limit_is_refused_by_the_api_with_advice_that_fits_a_tile(
    emu: EmulatorHandle, tmp_path: Path
) -> None:
    with emu.client() as client:
        tile = client.post("/api/tasking/search/tiles", json={"Wkt": FIELD}).json()["Data"]["Tiles"][0]["Guid"]
        mini = client.post("/api/tasking/search/tiles", json={"TileGuidForMiniTiles": tile}).json()["Data"]
    place_order(emu, Wkt=None, TileGuids=None, MiniTileGuids=[mini["MiniTiles"][0]])
    emu.control.update_account(emu.api_key, max_composite_area_km2=0)
    with pytest.raises(
        AirflowFailException, match=r"minitile_guid: the API refused .*code 1004.*composite of a smaller"
    ):
        ClearSkyDownloadTileOperator(
            task_id="mini", minitile_guid=mini["MiniTiles"][0], date=DATES[0], bands="rgb", destination=str(tmp_path)
        ).execute({})
    assert emu.control.request_count(ACCOUNT) == 0 and emu.control.download_count() == 0


# ---------------------------------------------------------------------------------------------- upload URL


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]] = []
    after_put: Any = None  # called once a PUT's body has arrived

    def do_PUT(self) -> None:
        length = int(self.headers["Content-Length"])
        self.received.append((self.path, self.rfile.read(length)))
        if _Receiver.after_put is not None:
            _Receiver.after_put()
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    _Receiver.received, _Receiver.after_put = [], None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/bucket/field.tif?{SECRET_MARK}", _Receiver.received
    finally:
        server.shutdown()
        server.server_close()


def test_upload_url_mode_returns_redacted_description(
    emu: EmulatorHandle,
    order_guid: str,
    receiver: tuple[str, list[tuple[str, bytes]]],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, received = receiver
    result = composite(upload_url=url).execute({})

    assert result == "composite 2025-05-07 uploaded to 127.0.0.1 via upload_url (URL redacted)"
    assert len(received) == 1 and received[0][0] == f"/bucket/field.tif?{SECRET_MARK}"
    with MemoryFile(received[0][1]) as memfile, memfile.open() as raster:
        assert raster.count == 3
    out, err = capfd.readouterr()
    logged = out + err + caplog.text
    assert "uploaded to 127.0.0.1" in logged  # the capture works...
    assert "TOP-SECRET" not in logged  # ...and the signed URL is not in it


def test_upload_url_failure_does_not_leak_the_url(emu: EmulatorHandle, order_guid: str) -> None:
    url = f"http://127.0.0.1:9/nothing-listens?{SECRET_MARK}"
    with pytest.raises(AirflowFailException) as raised:
        composite(upload_url=url).execute({})
    assert "Upload to UploadUrl failed" in str(raised.value)
    assert "TOP-SECRET" not in str(raised.value) and "TOP-SECRET" not in repr(raised.value.__cause__)


def ordered_minitile_pair(emu: EmulatorHandle) -> list[str]:
    """Two minitiles of the field, ordered (for several files in one task)."""
    with emu.client() as client:
        tile = client.post("/api/tasking/search/tiles", json={"Wkt": FIELD}).json()["Data"]["Tiles"][0]["Guid"]
        minis = client.post("/api/tasking/search/tiles", json={"TileGuidForMiniTiles": tile}).json()["Data"]
    pair: list[str] = minis["MiniTiles"][:2]
    place_order(emu, Wkt=None, TileGuids=None, MiniTileGuids=pair)
    return pair


def test_a_failure_after_a_file_went_to_upload_url_is_not_retried(
    emu: EmulatorHandle, receiver: tuple[str, list[tuple[str, bytes]]]
) -> None:
    """The API writes to a URL nobody can read back: a retry would upload, and pay for, the first file again."""
    url, received = receiver
    pair = ordered_minitile_pair(emu)
    # Once the first file has arrived, the API drops the next request's connection: retryable on its own.
    _Receiver.after_put = lambda: emu.control.add_fault("reset", path="/api/satelliteimages/process/minitile")
    task = ClearSkyDownloadTileOperator(
        task_id="minis", minitile_guid=pair, date=DATES[0], bands="rgb", resolution=40, upload_url=url
    )
    with pytest.raises(AirflowFailException, match=r"Not retried: 1 earlier file\(s\) .*uploaded and paid") as raised:
        task.execute({})
    assert f"minitile {pair[0]}" in str(raised.value) and "TOP-SECRET" not in str(raised.value)
    assert len(received) == 1


class _TaskTimeout(BaseException):
    """Like Airflow's AirflowTaskTimeout: a BaseException raised wherever the task is."""


def test_a_task_timeout_after_a_file_went_to_upload_url_is_not_retried(
    emu: EmulatorHandle, receiver: tuple[str, list[tuple[str, bytes]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_clearsky.operators import download as download_module

    url, received = receiver
    pair = ordered_minitile_pair(emu)
    real, calls = download_module._upload_one, []

    def upload_then_time_out(hook: Any, target: Any) -> None:
        calls.append(target)
        if len(calls) == 2:
            raise _TaskTimeout("Timeout, PID: 1234")
        real(hook, target)

    monkeypatch.setattr(download_module, "_upload_one", upload_then_time_out)
    task = ClearSkyDownloadTileOperator(
        task_id="minis", minitile_guid=pair, date=DATES[0], bands="rgb", resolution=40, upload_url=url
    )
    with pytest.raises(AirflowFailException, match=r"failed \(Timeout, PID: 1234\)\. Not retried: 1 earlier file"):
        task.execute({})
    assert len(received) == 1
