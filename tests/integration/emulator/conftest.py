"""Helpers for the emulator's own tests: everything goes over real HTTP on 127.0.0.1 with httpx."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from airflow_provider_clearsky.emulator.handle import EmulatorHandle

STRATUS2 = ["Sentinel1", "Sentinel2", "Landsat89"]
# A ~3.5 x 5.5 km field near Frankfurt (UTM 32N).
POLY = "POLYGON ((8.60 50.10, 8.65 50.10, 8.65 50.15, 8.60 50.15, 8.60 50.10))"
AOI_WKT = f"GEOMETRYCOLLECTION ({POLY})"
INNER = "POLYGON ((8.61 50.11, 8.64 50.11, 8.64 50.14, 8.61 50.14, 8.61 50.11))"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def order_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Wkt": AOI_WKT,
        "GeoJson": None,
        "TileGuids": None,
        "MiniTileGuids": None,
        "Model": "Stratus2",
        "SatelliteConstellations": STRATUS2,
        "StorageMonths": 1,
        "ApiRequests": 2,
        "ImageFrequency": 7,
        "ReferenceDate": "2025-01-01",
        "From": "2025-05-01",
        "To": "2025-05-31",
    }
    body.update(overrides)
    return body


def download_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Wkt": INNER,
        "Date": "2025-05-07",
        "Resolution": 10,
        "EpsgProjection": 47000,
        "Bandnames": "rgb",
        "DataType": "INT16",
        "Model": "Stratus2",
        "SatelliteConstellations": STRATUS2,
    }
    body.update(overrides)
    return body


def data(resp: httpx.Response) -> Any:
    assert resp.status_code == 200, resp.text
    payload = resp.json()
    assert payload["Succeeded"] is True and payload["Error"] is None
    return payload["Data"]


def error(resp: httpx.Response, status: int, code: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    payload = resp.json()
    assert payload["Succeeded"] is False
    assert payload["Error"]["Code"] == code, payload
    return dict(payload)


@pytest.fixture
def emu(clearsky_emulator: EmulatorHandle) -> EmulatorHandle:
    clearsky_emulator.control.set_time(utc(2025, 6, 10, 12))
    return clearsky_emulator


@pytest.fixture
def client(emu: EmulatorHandle) -> Iterator[httpx.Client]:
    with emu.client() as c:
        yield c


def produced_order(client: httpx.Client, emu: EmulatorHandle, **overrides: Any) -> dict[str, Any]:
    """A historical May-2025 order, all of whose dates are produced."""
    order = data(client.post("/api/tasking/orders", json=order_body(**overrides)))
    emu.control.advance(hours=3)
    return dict(order)
