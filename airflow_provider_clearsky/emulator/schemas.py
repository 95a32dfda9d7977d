"""Request bodies. Keys are matched case-insensitively (``normalise_keys``); values are typed like the
ASP.NET service would bind them, so a wrong JSON type is a ProblemDetails answer, not a 992."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, StrictBool, StrictFloat, StrictInt, StrictStr

_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ][0-9:.]+(?:Z|[+-]\d{2}:?\d{2})?)?$")


def _parse_date(value: Any) -> Any:
    """A date, or a date-time whose UTC date is meant (``2024-05-03T23:00:00-05:00`` is 2024-05-04)."""
    if isinstance(value, str):
        text = value.strip()
        m = _DATE_RE.match(text)
        if not m:
            raise ValueError(f"The JSON value could not be converted to a date: {value!r}")
        if len(text) > 10:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            if moment.tzinfo is not None:
                return moment.astimezone(UTC).date()
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    if value is None:
        return None
    raise ValueError("The JSON value could not be converted to a date")


ApiDate = Annotated[date, BeforeValidator(_parse_date)]
Number = StrictInt | StrictFloat


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    #: Extra case-insensitive aliases: lower-case alias -> field name.
    ALIASES: ClassVar[dict[str, str]] = {}

    @classmethod
    def normalise_keys(cls, data: dict[str, Any]) -> dict[str, Any]:
        names = {name.lower(): name for name in cls.model_fields}
        aliases = cls.ALIASES
        out: dict[str, Any] = {}
        for key, value in data.items():
            low = str(key).lower()
            target = names.get(low) or aliases.get(low)
            if target is not None and (target not in out or out[target] is None):
                out[target] = value
        return out


_ORDER_ALIASES = {"tiles": "TileGuids", "minitiles": "MiniTileGuids"}


class AoiBody(_Body):
    Wkt: StrictStr | None = None
    GeoJson: dict[str, Any] | None = None


class TileSearchBody(AoiBody):
    TileGuids: list[StrictStr] | None = None
    MiniTileGuids: list[StrictStr] | None = None
    TileGuidForMiniTiles: StrictStr | None = None


class OrderBody(AoiBody):
    # docs/api.md#order-estimate-and-create: the 2024 client named the tile list ``Tiles``; both spellings are accepted.
    ALIASES: ClassVar[dict[str, str]] = _ORDER_ALIASES
    TileGuids: list[StrictStr] | None = None
    MiniTileGuids: list[StrictStr] | None = None
    SatelliteConstellations: list[StrictStr] | None = None
    Model: StrictStr | None = None
    StorageMonths: StrictInt | None = None
    ApiRequests: StrictInt | None = None
    ImageFrequency: StrictInt | None = None
    ReferenceDate: ApiDate | None = None
    From: ApiDate | None = None
    To: ApiDate | None = None
    TileDeduplication: StrictBool | None = None
    GeometryTileOrdering: StrictBool | None = None
    SimulatedEuroUsage: Number | None = None


class DetailsBody(_Body):
    Guids: list[StrictStr] | None = None


class SearchAvailableBody(AoiBody):
    From: ApiDate | None = None
    Until: ApiDate | None = None


class DownloadBody(AoiBody):
    Date: ApiDate | None = None
    Resolution: StrictInt | None = None
    EpsgProjection: StrictInt | None = None
    FileType: StrictStr | None = None
    PixelSelectionMode: StrictStr | None = None
    DataType: StrictStr | None = None
    UtmDataSelectionMode: StrictStr | None = None
    UtmGridForcePixelResolutionSize: StrictBool | None = None
    SatelliteConstellations: list[StrictStr] | None = None
    Model: StrictStr | None = None
    Bandnames: StrictStr | None = None
    OldPixelSelectionMode: StrictBool | None = None
    AllowPartialImage: StrictBool | None = None
    AutomaticOrderCreation: StrictBool | None = None
    UploadUrl: StrictStr | None = None
    Level: StrictInt | None = None
    Harmonize: StrictBool | None = None
    ClipReflectance: StrictBool | None = None
    TileGuid: StrictStr | None = None
    MiniTileGuid: StrictStr | None = None
