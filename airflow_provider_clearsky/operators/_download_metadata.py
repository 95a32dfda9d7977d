"""What is known about a download before and after it: its key, default name, sidecar and STAC Item.

* The **request key** is the SHA-256 of the download's settings (area, date, model, bands, projection...)
  as canonical JSON. It names the file by default and is recorded in the sidecar, so a re-run can tell
  "this file is exactly what I was about to pay for" from "a file of the same name with other settings".
* The **sidecar** ``<file>.json`` travels with the data: settings (never a secret), order GUID, checksum,
  size, the API's file name, any attribution or provenance notice the API gave (passed through unchanged)
  and the time of download.
* The optional **STAC Item** ``<file>.stac.json`` is a minimal STAC 1.0.0 Item for catalogue tools.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

SIDECAR_SUFFIX = ".json"
STAC_SUFFIX = ".stac.json"
STAC_FILE_EXTENSION = "https://stac-extensions.github.io/file/v2.1.0/schema.json"
SIDECAR_VERSION = 1
# Header and field names that carry attribution, licence or provenance notices (docs/api.md#attribution:
# the API names no field for them, so anything that looks like one is passed through unchanged).
NOTICE_NAME = re.compile(r"attribution|licen[cs]e|provenance|copyright|notice", re.IGNORECASE)


def request_key(settings: Mapping[str, Any]) -> str:
    """Return the SHA-256 of the download settings as canonical JSON (sorted keys, no whitespace)."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def default_filename(kind: str, settings: Mapping[str, Any], key: str, guid: str | None = None) -> str:
    """Return a deterministic name known before the request (the API's own name arrives only after paying).

    ``clearsky_<kind>[_<guid>]_<date>_<model>_<resolution>m_epsg<epsg>_<key[:12]>.tif``
    """
    parts = ["clearsky", kind]
    if guid:
        parts.append(guid)
    parts += [
        str(settings.get("Date", "nodate")),
        str(settings.get("Model", "model")),
        f"{settings.get('Resolution', '')}m",
        f"epsg{settings.get('EpsgProjection', '')}",
        key[:12],
    ]
    name = "_".join(parts) + "." + str(settings.get("FileType") or "tif")
    return re.sub(r"[^A-Za-z0-9._-]", "-", name)


def filename_fields(kind: str, settings: Mapping[str, Any], key: str, guid: str | None) -> dict[str, Any]:
    """Return the ``{placeholders}`` a ``filename`` template may use after Jinja rendering."""
    return {
        "kind": kind,
        "guid": guid or "",
        "date": settings.get("Date", ""),
        "model": settings.get("Model", ""),
        "resolution": settings.get("Resolution", ""),
        "epsg": settings.get("EpsgProjection", ""),
        "bands": settings.get("Bandnames", ""),
        "data_type": settings.get("DataType", ""),
        "key": key[:12],
        "full_key": key,
    }


def notices(source: str, fields: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return the attribution-like entries of ``fields`` (headers or unknown response fields), keyed ``source:name``."""
    if not fields:
        return {}
    return {f"{source}:{name}": value for name, value in fields.items() if NOTICE_NAME.search(str(name))}


def sidecar_document(
    *,
    kind: str,
    uri: str,
    filename: str,
    size: int,
    sha256: str,
    key: str,
    settings: Mapping[str, Any],
    order_guid: str | None,
    source_filename: str | None,
    content_type: str | None,
    attribution: Mapping[str, Any],
    estimate: Mapping[str, Any] | None,
    downloaded_at: dt.datetime,
    duration_seconds: float,
    provider_version: str,
) -> dict[str, Any]:
    """Return the sidecar of one downloaded file (its fields: docs/operators-download.md#sidecar-filejson)."""
    return {
        "clearsky_sidecar_version": SIDECAR_VERSION,
        "kind": kind,
        "uri": uri,
        "file": filename,
        "size": size,
        "sha256": sha256,
        "request_key": key,
        "request": dict(settings),
        "order_guid": order_guid,
        "source_filename": source_filename,
        "content_type": content_type,
        "attribution": dict(attribution),
        "estimate": dict(estimate) if estimate else None,
        "downloaded_at": downloaded_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "duration_seconds": round(duration_seconds, 3),
        "provider": f"airflow-provider-clearsky {provider_version}",
    }


def sidecar_matches(document: Mapping[str, Any] | None, key: str) -> tuple[bool, str]:
    """Tell whether a sidecar describes a complete download of the request ``key``; else why not."""
    if document is None:
        return False, "it has no readable sidecar"
    if document.get("request_key") != key:
        return False, "its sidecar records other request settings"
    if not isinstance(document.get("size"), int) or not isinstance(document.get("sha256"), str):
        return False, "its sidecar records no size or checksum"
    return True, ""


def bbox_of(geojson: Mapping[str, Any]) -> list[float]:
    """Return the ``[west, south, east, north]`` bounds of a GeoJSON geometry, for a STAC ``bbox``."""

    def points(value: Any) -> Iterable[tuple[float, float]]:
        if value and isinstance(value[0], (int, float)):
            yield float(value[0]), float(value[1])
        else:
            for item in value:
                yield from points(item)

    lons, lats = zip(*points(geojson["coordinates"]), strict=True)
    return [min(lons), min(lats), max(lons), max(lats)]


def stac_item(
    *,
    item_id: str,
    filename: str,
    date: str,
    geometry: Mapping[str, Any] | None,
    sidecar: Mapping[str, Any],
) -> dict[str, Any]:
    """Return a minimal STAC 1.0.0 Item for one downloaded file (asset href relative to the Item)."""
    request = sidecar.get("request") or {}
    properties: dict[str, Any] = {
        "datetime": f"{date}T00:00:00Z",
        "created": sidecar.get("downloaded_at"),
        "clearsky:model": request.get("Model"),
        "clearsky:satellite_constellations": request.get("SatelliteConstellations"),
        "clearsky:bands": request.get("Bandnames"),
        "clearsky:resolution": request.get("Resolution"),
        "clearsky:epsg": request.get("EpsgProjection"),
        "clearsky:order_guid": sidecar.get("order_guid"),
    }
    if sidecar.get("attribution"):
        properties["clearsky:attribution"] = sidecar["attribution"]
    item: dict[str, Any] = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [STAC_FILE_EXTENSION],
        "id": item_id,
        "geometry": dict(geometry) if geometry else None,
        "properties": {k: v for k, v in properties.items() if v is not None},
        "links": [],
        "assets": {
            "data": {
                "href": f"./{filename}",
                "type": "image/tiff; application=geotiff",
                "roles": ["data"],
                "file:size": sidecar.get("size"),
                "file:checksum": f"1220{sidecar.get('sha256')}",  # multihash: sha2-256, 32 bytes
            },
            "metadata": {"href": f"./{filename}{SIDECAR_SUFFIX}", "type": "application/json", "roles": ["metadata"]},
        },
    }
    if geometry:
        item["bbox"] = bbox_of(geometry)
    return item
