"""Account, tasking models and the tile grid."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AliasChoices, BeforeValidator, Field, SecretStr, field_validator, model_validator

from airflow_provider_clearsky.models.base import ApiRequest, ApiResponse
from airflow_provider_clearsky.models.geometry import imagery_geojson, imagery_wkt
from airflow_provider_clearsky.models.orders import _guid_list


class AccountInfo(ApiResponse):
    """Union of ``/api/account/info`` (2025) and ``/api/apikey/info`` (2024) fields; all optional.

    The 2024 shape echoes the key itself: it is kept as a secret and left out of dumps.
    """

    key: SecretStr | None = Field(default=None, exclude=True, repr=False)
    tenant_id: str | None = None
    credit_amount: float | None = None
    euro_credit_amount: float | None = None
    credit_limit: float | None = None
    euro_credit_limit: float | None = None
    euro_overdraft_limit: float | None = None
    euro_balance_cap: float | None = None
    contact_info: str | None = None
    email: str | None = None
    max_concurrent_connections: int | None = None
    max_composite_area_km2: float | None = None
    max_total_bands: int | None = None
    current_month_costs: float | None = None
    next_month_costs: float | None = None


class SupportedConstellation(ApiResponse):
    satellite_constellation: str
    optional: bool = False


class TaskingModel(ApiResponse):
    model: str
    supported_satellite_constellations: list[SupportedConstellation] = Field(default_factory=list)

    @property
    def required_constellations(self) -> list[str]:
        return [c.satellite_constellation for c in self.supported_satellite_constellations if not c.optional]

    @property
    def optional_constellations(self) -> list[str]:
        return [c.satellite_constellation for c in self.supported_satellite_constellations if c.optional]


class TaskingModels(ApiResponse):
    tasking_models: list[TaskingModel]


def _text(value: Any) -> Any:
    return str(value) if isinstance(value, int) else value


class Tile(ApiResponse):
    """A tile or minitile. Older docs spell the id ``tileGuid`` and the EPSG as an int (docs/api.md#tiles)."""

    guid: str = Field(validation_alias=AliasChoices("Guid", "TileGuid", "MiniTileGuid"))
    mini_tile: bool | None = None
    epsg: Annotated[str | None, BeforeValidator(_text)] = None
    data_geog_wkt: str | None = None


class TileSearchResult(ApiResponse):
    tiles: list[Tile] = Field(default_factory=list)
    mini_tiles: list[str] = Field(default_factory=list)

    @field_validator("mini_tiles", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [item.get("Guid", item.get("guid")) if isinstance(item, dict) else item for item in value]
        return value or []

    @property
    def tile_guids(self) -> list[str]:
        return [tile.guid for tile in self.tiles if not tile.mini_tile]

    @property
    def mini_tile_guids(self) -> list[str]:
        found = [tile.guid for tile in self.tiles if tile.mini_tile]
        return found + [guid for guid in self.mini_tiles if guid not in found]


class TileSearchRequest(ApiRequest):
    """Body of ``POST /api/tasking/search/tiles``: exactly one selector; the others are sent as null."""

    wkt: str | None = None
    geo_json: dict[str, Any] | None = None
    tile_guids: list[str] | None = None
    mini_tile_guids: list[str] | None = None
    tile_guid_for_mini_tiles: str | None = None

    # Sent as one POLYGON or MULTIPOLYGON, as every vendor client and example does; a GEOMETRYCOLLECTION is
    # what orders and tile optimize take.
    @field_validator("wkt", mode="before")
    @classmethod
    def _wkt(cls, value: Any) -> Any:
        return imagery_wkt(value) if value is not None else None

    @field_validator("geo_json", mode="before")
    @classmethod
    def _geojson(cls, value: Any) -> Any:
        return imagery_geojson(value) if value is not None else None

    @field_validator("tile_guids", "mini_tile_guids", mode="before")
    @classmethod
    def _guids(cls, value: Any) -> list[str] | None:
        return _guid_list("tile_guids / mini_tile_guids", value)

    @field_validator("tile_guid_for_mini_tiles", mode="before")
    @classmethod
    def _one_guid(cls, value: Any) -> Any:
        if value is None:
            return None
        guids = _guid_list("tile_guid_for_mini_tiles", [value])
        return guids[0] if guids else None

    @model_validator(mode="after")
    def _one_selector(self) -> TileSearchRequest:
        given = [name for name, value in self if value is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of wkt, geo_json, tile_guids, mini_tile_guids, tile_guid_for_mini_tiles "
                f"(got {', '.join(given) or 'none'})"
            )
        return self


class OptimizedTiles(ApiResponse):
    """``Data`` of tile optimize: the cheapest tile and minitile cover of an area."""

    tiles: list[str] = Field(default_factory=list)
    mini_tiles: list[str] = Field(default_factory=list)
