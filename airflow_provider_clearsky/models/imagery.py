"""Imagery: available dates, composite readiness and estimate, and the download requests."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from airflow_provider_clearsky.models.base import ApiRequest, ApiResponse
from airflow_provider_clearsky.models.enums import (
    RESOLUTIONS,
    DataType,
    PixelSelectionMode,
    UtmDataSelectionMode,
)
from airflow_provider_clearsky.models.geometry import imagery_geojson, imagery_wkt
from airflow_provider_clearsky.models.orders import ApiDate, _guid_list, constellation_names, model_name

# Band lists per model family (docs/api.md#values); index expressions like [B8_B4] count as one band each.
STRATUS_BANDS = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")
NIMBUS_L2A_EXTRA = ("B1", "B9")
NIMBUS_L1C_EXTRA = ("B1", "B9", "B10")
#: Every band name the API knows (a model this provider does not know may use any of them).
KNOWN_BANDS = ("B1", *STRATUS_BANDS[:7], "B8A", "B9", "B10", "B11", "B12")
RGB_BANDS = ("B4", "B3", "B2")
_B10 = re.compile(r"(?<![a-z0-9])B10(?![a-z0-9])", re.IGNORECASE)
_INDEX = re.compile(r"\[\s*([^\[\]_\s]+)\s*_\s*([^\[\]_\s]+)\s*\]")
_BANDS_HELP = (
    "use 'all', 'rgb', or band names separated by commas (Stratus: B2, B3, B4, B5, B6, B7, B8, B8A, B11, B12; "
    "Nimbus also B1, B9, and B10 at level 1), and normalised-difference indices such as '[B8_B4]', "
    "e.g. 'B8,B4,[B8_B4]'"
)


def _family(model: str) -> str | None:
    name = model.strip().lower()
    return "stratus" if name.startswith("stratus") else "nimbus" if name.startswith("nimbus") else None


def model_bands(model: str = "Stratus2", level: int | None = None) -> tuple[str, ...]:
    """The bands of ``model``: Stratus's ten; Nimbus adds B1 and B9, and B10 at level 1 (L1C; the API's
    default is level 2)."""
    if _family(model) == "nimbus":
        extra = NIMBUS_L1C_EXTRA if level == 1 else NIMBUS_L2A_EXTRA
        return tuple(band for band in KNOWN_BANDS if band in STRATUS_BANDS or band in extra)
    return STRATUS_BANDS  # Stratus, and a model this provider does not know (counted as the default family)


def band_list(bandnames: str, model: str = "Stratus2", level: int | None = None) -> list[str]:
    """The output bands a ``Bandnames`` value asks for, one item each (an index such as ``[B8_B4]`` is one).

    Raises ``ValueError`` naming the unknown band and the accepted forms. Names are checked against the
    model's bands (any band the API knows for a model this provider does not know).
    """
    text = bandnames.strip()
    if text.lower() == "all":
        return list(model_bands(model, level))
    if text.lower() == "rgb":
        return list(RGB_BANDS)
    family = _family(model)
    if family == "stratus":
        allowed: tuple[str, ...] = STRATUS_BANDS
    elif family == "nimbus":
        allowed = (*NIMBUS_L1C_EXTRA, *STRATUS_BANDS)  # B10 at level 1 only: checked with the level
    else:
        allowed = KNOWN_BANDS
    known = {band.lower(): band for band in allowed}
    bands: list[str] = []
    for part in (item.strip() for item in text.split(",")):
        index = _INDEX.fullmatch(part)
        names = list(index.groups()) if index else [part]
        for name in names:
            if name.lower() in known:
                continue
            if not name:
                raise ValueError(f"{bandnames!r} has an empty item; {_BANDS_HELP}")
            if name.upper() in KNOWN_BANDS:
                raise ValueError(
                    f"{name} is not a band of {model.strip()} (it has {', '.join(model_bands(model, 1))}); "
                    "drop it (B1, B9 and B10 are Nimbus bands)"
                )
            raise ValueError(f"{name!r} is not a band name; {_BANDS_HELP}")
        bands.append(part)
    return bands


def band_count(bandnames: str, model: str = "Stratus2", *, level: int | None = None) -> int:
    """How many bands a ``Bandnames`` value asks for (checked against ``MaxTotalBands``)."""
    return len(band_list(bandnames, model, level))


class _AreaRequest(ApiRequest):
    """A request about one area: exactly one of ``wkt`` or ``geo_json``, a Polygon or MultiPolygon."""

    wkt: str | None = None
    geo_json: dict[str, Any] | None = None

    @field_validator("wkt", mode="before")
    @classmethod
    def _wkt(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            raise ValueError("must be WKT text; pass GeoJSON objects as geo_json")
        return imagery_wkt(value)

    @field_validator("geo_json", mode="before")
    @classmethod
    def _geojson(cls, value: Any) -> Any:
        return imagery_geojson(value) if value is not None else None

    @model_validator(mode="after")
    def _one_area(self) -> _AreaRequest:
        if (self.wkt is None) == (self.geo_json is None):
            raise ValueError("give exactly one area: wkt or geo_json")
        return self


class AvailableDatesRequest(_AreaRequest):
    """Body of ``POST /api/satelliteimages/search/available``."""

    date_from: ApiDate = Field(alias="From")
    until: ApiDate | None = None

    @model_validator(mode="after")
    def _window(self) -> AvailableDatesRequest:
        if self.until is not None and self.until < self.date_from:
            raise ValueError(f"Until ({self.until}) is before From ({self.date_from}); swap them")
        return self


class DatesByGeog(ApiResponse):
    wkt: str | None = None
    dates: list[ApiDate] = Field(default_factory=list)


class ModelImageDates(ApiResponse):
    model: str
    satellite_constellations: list[str] = Field(default_factory=list)
    dates_by_geog: list[DatesByGeog] = Field(default_factory=list)

    @property
    def dates(self) -> list[dt.date]:
        """Dates available over the whole area: the intersection over its sub-geometries."""
        if not self.dates_by_geog:
            return []
        common = set(self.dates_by_geog[0].dates)
        for group in self.dates_by_geog[1:]:
            common &= set(group.dates)
        return sorted(common)


class AvailableDates(ApiResponse):
    model_image_dates: list[ModelImageDates] = Field(default_factory=list)

    def dates_for(self, model: str, satellite_constellations: list[str] | None = None) -> list[dt.date]:
        """Dates for one kind of order (model, and constellation set when given)."""
        wanted = {c.lower() for c in satellite_constellations} if satellite_constellations else None
        found: set[dt.date] = set()
        for group in self.model_image_dates:
            if group.model.lower() != model.lower():
                continue
            if wanted is not None and {c.lower() for c in group.satellite_constellations} != wanted:
                continue
            found.update(group.dates)
        return sorted(found)


class ImageryRequest(_AreaRequest):
    """Settings of a composite download, shared by its readiness check, its estimate and the download.

    Keep them identical across the three calls (docs/api.md#downloads). ``upload_url`` is secret: it is
    never shown in ``repr`` or errors, and sent only with the download itself.
    """

    date: ApiDate
    model: str = "Stratus2"
    satellite_constellations: list[str] = Field(default_factory=lambda: ["Sentinel1", "Sentinel2", "Landsat89"])
    resolution: int = 10
    epsg_projection: int = 47000
    bandnames: str = "all"
    data_type: DataType = DataType.INT16
    pixel_selection_mode: PixelSelectionMode = PixelSelectionMode.INTERSECT
    utm_data_selection_mode: UtmDataSelectionMode = UtmDataSelectionMode.COMBINED_UTM
    #: Sent explicitly with the 2025 vendor client's defaults: pixels exactly ``resolution`` metres after
    #: reprojection (``True``), and the current pixel selection (``OldPixelSelectionMode=False``).
    utm_grid_force_pixel_resolution_size: bool = True
    old_pixel_selection_mode: bool = False
    allow_partial_image: bool = False
    #: Composites only: when the area or date is not ordered, let the service queue an order (which costs
    #: order credits) instead of failing with 1006. Off unless asked for, as in the vendor client.
    automatic_order_creation: bool = False
    file_type: str = "tif"
    level: int | None = None
    harmonize: bool | None = None
    upload_url: SecretStr | None = None

    @field_validator("resolution", mode="before")
    @classmethod
    def _resolution(cls, value: Any) -> Any:
        if isinstance(value, bool) or value not in RESOLUTIONS:
            raise ValueError(f"must be one of {', '.join(map(str, RESOLUTIONS))} (metres per pixel)")
        return value

    @field_validator("epsg_projection", mode="before")
    @classmethod
    def _epsg(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError("must be an EPSG code such as 4326, 32632, or 47000 for automatic UTM")
        return value

    @field_validator("model", mode="before")
    @classmethod
    def _model(cls, value: Any) -> Any:
        return model_name(value)

    @field_validator("bandnames", mode="before")
    @classmethod
    def _bands(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, (list, tuple)):
            value = ",".join(str(item).strip() for item in value)
        if not isinstance(value, str) or not value.strip():
            raise ValueError("must be 'all', 'rgb', or a list such as 'B8,B4,B3' or '[B8_B4]'")
        band_list(value, info.data.get("model") or "")  # ValueError naming an unknown band
        return value.strip()

    @field_validator("data_type", mode="before")
    @classmethod
    def _data_type(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("pixel_selection_mode", "utm_data_selection_mode", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("level", mode="before")
    @classmethod
    def _level(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None and value not in (1, 2):
            raise ValueError("must be 1 (L1C, top of atmosphere) or 2 (L2A, bottom of atmosphere)")
        bands, model = info.data.get("bandnames"), info.data.get("model")
        nimbus = isinstance(model, str) and _family(model) == "nimbus"
        if value != 1 and nimbus and isinstance(bands, str) and _B10.search(bands):
            raise ValueError(
                f"bands {bands!r} include B10, which {model} has at level 1 (L1C) only; set level=1 or drop B10"
            )
        return value

    @field_validator("satellite_constellations", mode="before")
    @classmethod
    def _constellations(cls, value: Any) -> Any:
        return constellation_names(value)

    @property
    def band_count(self) -> int:
        return band_count(self.bandnames, self.model, level=self.level)

    def _area_and_settings(self) -> dict[str, Any]:
        payload = self.model_dump(mode="json", by_alias=True, exclude={"upload_url"})
        return {key: value for key, value in payload.items() if value is not None or key in ("Wkt", "GeoJson")}

    def availability_payload(self) -> dict[str, Any]:
        """Body of ``process/composite/available``: the settings that decide readiness."""
        full = self._area_and_settings()
        keys = (
            "Wkt",
            "GeoJson",
            "Date",
            "UtmDataSelectionMode",
            "SatelliteConstellations",
            "Model",
            "EpsgProjection",
            "Bandnames",
        )
        return {key: full[key] for key in keys if key in full}

    def estimate_payload(self) -> dict[str, Any]:
        """Body of ``process/composite/estimate``: the download's settings, without the upload URL."""
        return self._area_and_settings()

    def to_payload(self) -> dict[str, Any]:
        """Body of the download itself, with the upload URL when one is set."""
        payload = self._area_and_settings()
        payload["UploadUrl"] = self.upload_url.get_secret_value() if self.upload_url else None
        return payload


CompositeRequest = ImageryRequest


class GridImageryRequest(ImageryRequest):
    """A tile or minitile download: one GUID instead of an area; the other settings as for composites."""

    tile_guid: str | None = None
    mini_tile_guid: str | None = None
    #: Tile and minitile downloads: the vendor client's reflectance-clipping switch (model-dependent); not
    #: sent unless set, as the API's own default applies.
    clip_reflectance: bool | None = None

    @field_validator("tile_guid", "mini_tile_guid", mode="before")
    @classmethod
    def _guid(cls, value: Any) -> Any:
        if value is None:
            return None
        guids = _guid_list("tile_guid / mini_tile_guid", [value])
        return guids[0] if guids else None

    @model_validator(mode="after")
    def _one_area(self) -> GridImageryRequest:
        # Replaces the area rule: a grid download names exactly one tile or minitile and no polygon.
        if self.wkt is not None or self.geo_json is not None:
            raise ValueError("a tile or minitile download takes tile_guid or mini_tile_guid, not wkt/geo_json")
        if (self.tile_guid is None) == (self.mini_tile_guid is None):
            raise ValueError("give exactly one of tile_guid or mini_tile_guid")
        return self

    def _area_and_settings(self) -> dict[str, Any]:
        # OldPixelSelectionMode and AutomaticOrderCreation are composite settings in the vendor client.
        composite_only = {"old_pixel_selection_mode", "automatic_order_creation"}
        payload = self.model_dump(
            mode="json", by_alias=True, exclude={"upload_url", "wkt", "geo_json", *composite_only}
        )
        return {key: value for key, value in payload.items() if value is not None}


class CompositeAvailability(ApiResponse):
    """``Data`` of ``process/composite/available``: readiness flags for one area and date."""

    intersected_active_zones: bool | None = None
    intersected_active_zones_utm_epsg: Any = None
    fully_available: bool = False
    uncertainty_available: bool | None = None
    partially_available: bool = False
    partially_uncertainty_available: bool | None = None
    polygon_in_data_area: bool | None = None
    data_available_for_user: bool = False
    data_on_zone_data_frequency_date: bool | None = None
    all_images_predicted: bool | None = None
    any_image_within_storage_months: bool | None = None
    orders_cover_polygon: bool = False

    def is_ready(self, allow_partial: bool = False) -> bool:
        """Readiness (docs/api.md#availability): fully (or, if allowed, partially) available, covered, accessible."""
        available = self.fully_available or (allow_partial and self.partially_available)
        return available and self.orders_cover_polygon and self.data_available_for_user

    @property
    def is_expired(self) -> bool:
        return self.any_image_within_storage_months is False


class CompositeEstimate(ApiResponse):
    area_estimate_km2: float | None = None
    credit_estimate: float | None = None
