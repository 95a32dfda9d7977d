"""The files a download task produces: one :class:`DownloadTarget` each, and the name it gets before paying.

The final name is known before the paid request (a ``filename`` template, or a deterministic default from the
settings), so an existing complete file is found without any request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_clearsky._compat import AirflowFailException
from airflow_provider_clearsky.operators import _download_metadata as meta

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook
    from airflow_provider_clearsky.models import ImageryRequest


@dataclass
class DownloadTarget:
    """One file to produce: its request, its name and what is known about it so far."""

    kind: str  # composite | tile | minitile
    request: ImageryRequest
    settings: dict[str, Any]
    key: str
    guid: str | None = None
    final: ObjectStoragePath | None = None
    uri: str = ""
    skipped: bool = False
    result: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, kind: str, request: ImageryRequest, guid: str | None = None) -> DownloadTarget:
        """Return the target of ``request``, keyed by its settings (which never contain the upload URL)."""
        settings = request.estimate_payload()  # never contains the upload URL
        return cls(kind=kind, request=request, settings=settings, key=meta.request_key(settings), guid=guid)

    @property
    def label(self) -> str:
        """What the logs call it: the tile's GUID, or the composite's date."""
        return str(self.guid or self.settings.get("Date"))

    @property
    def sidecar_path(self) -> ObjectStoragePath:
        """The sidecar's path, ``<file>.json`` beside the final file (known once ``final`` is set)."""
        assert self.final is not None
        return self.final.parent / (self.final.name + meta.SIDECAR_SUFFIX)


def file_name(template: str | None, target: DownloadTarget, *, several: bool) -> str:
    """Return the file name inside the destination: ``template`` filled in, or the deterministic default."""
    if not template:
        return meta.default_filename(target.kind, target.settings, target.key, target.guid)
    fields = meta.filename_fields(target.kind, target.settings, target.key, target.guid)
    try:
        name = str(template).format_map(fields)
    except (KeyError, IndexError, ValueError) as error:
        raise AirflowFailException(
            f"filename: {template!r} uses an unknown placeholder ({error}); available: "
            f"{', '.join('{' + k + '}' for k in fields)}"
        ) from None
    name = name.strip().lstrip("/")
    if not name or name.endswith("/") or ".." in name.split("/"):
        raise AirflowFailException(f"filename: {template!r} must name a file inside destination")
    if several and "{guid}" not in str(template) and "{key}" not in str(template):
        raise AirflowFailException(
            "filename: several files are downloaded, so the template must contain {guid} or {key}"
        )
    return name


def tile_guids(value: str | Sequence[str] | None, argument: str = "tile_guid") -> list[str]:
    """Return the GUIDs of a ``tile_guid``/``minitile_guid`` argument: one, comma-separated text, or a list."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, (list, tuple, set, frozenset)):
        raise AirflowFailException(
            f"{argument}: must be a GUID, a comma-separated text of GUIDs or a list of them (e.g. from "
            f"ClearSkySearchTilesOperator's tile_guids), not {type(value).__name__} {value!r}"
        )
    return [str(item) for item in value]


def geometry_of(target: DownloadTarget) -> dict[str, Any] | None:
    """Return the target's area as GeoJSON (None for tiles, which are named by GUID)."""
    geometry: dict[str, Any] | None = target.settings.get("GeoJson")
    if geometry:
        return geometry
    wkt = target.settings.get("Wkt")
    if not wkt:
        return None
    from airflow_provider_clearsky.models.geometry import imagery_geojson

    return imagery_geojson(wkt)


def expected_bytes(target: DownloadTarget) -> int | None:
    """Return the raster's uncompressed size from the estimate's area, when an estimate was made."""
    area = (target.result.get("estimate") or {}).get("AreaEstimateKm2")
    resolution = target.settings.get("Resolution")
    if not isinstance(area, (int, float)) or not isinstance(resolution, int) or resolution <= 0:
        return None
    sample = 1 if str(target.settings.get("DataType", "")).upper() == "UINT8" else 2
    return int(area * 1e6 / resolution**2 * target.request.band_count * sample)


def open_download(hook: ClearSkyHook, target: DownloadTarget) -> Any:
    """Send the target's paid request; returns the streamed answer (a context manager)."""
    from airflow_provider_clearsky.models import GridImageryRequest

    if isinstance(target.request, GridImageryRequest):
        return hook.stream_tile(target.request)
    return hook.stream_composite(target.request)
