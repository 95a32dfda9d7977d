"""Operators that find the tiles and minitiles of an area (free), to feed tile-mode orders."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_clearsky._compat import AirflowFailException
from airflow_provider_clearsky.exceptions import ClearSkyError, InvalidRequestError
from airflow_provider_clearsky.operators._order_settings import _ClearSkyOperator, _invalid
from airflow_provider_clearsky.operators.orders import _fail_fast
from airflow_provider_clearsky.utils import coercion

if TYPE_CHECKING:
    from airflow.sdk import Context


class _AoiOperator(_ClearSkyOperator):
    template_fields: Sequence[str] = ("wkt", "geojson", "clearsky_conn_id")
    template_ext: Sequence[str] = (".wkt", ".geojson")
    template_fields_renderers: ClassVar[dict[str, str]] = {"geojson": "json"}

    def __init__(self, *, wkt: str | None = None, geojson: dict[str, Any] | str | None = None, **kwargs: Any) -> None:
        # Each key is also its own XCom, so `op.output["tile_guids"]` feeds a tile order directly.
        kwargs.setdefault("multiple_outputs", True)
        super().__init__(**kwargs)
        self.wkt = wkt
        self.geojson = geojson


class ClearSkySearchTilesOperator(_AoiOperator):
    """The orderable tiles and minitiles of an area (free): ``{"tile_guids": [...], "minitile_guids": [...]}``.

    Give exactly one of ``wkt``, ``geojson`` (either may be a ``.wkt``/``.geojson`` file), ``tile_guids`` /
    ``minitile_guids`` (look those cells up), or ``tile_guid_for_minitiles`` (the minitiles inside one tile).
    Feed the result to a tile-mode order: ``tile_guids=search.output["tile_guids"]``.
    """

    template_fields: Sequence[str] = (
        *_AoiOperator.template_fields,
        "tile_guids",
        "minitile_guids",
        "tile_guid_for_minitiles",
    )

    def __init__(
        self,
        *,
        tile_guids: list[str] | str | None = None,
        minitile_guids: list[str] | str | None = None,
        tile_guid_for_minitiles: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.tile_guids = tile_guids
        self.minitile_guids = minitile_guids
        self.tile_guid_for_minitiles = tile_guid_for_minitiles

    def execute(self, context: Context) -> dict[str, list[str]]:
        """Return the tile and minitile GUIDs of the area or cells given."""
        from airflow_provider_clearsky.models import TileSearchRequest

        try:
            request = TileSearchRequest(
                wkt=self.wkt or None,
                geo_json=self.geojson or None,
                tile_guids=coercion.as_guid_list("tile_guids", self.tile_guids),
                mini_tile_guids=coercion.as_guid_list("minitile_guids", self.minitile_guids),
                tile_guid_for_mini_tiles=self.tile_guid_for_minitiles or None,
            )
        except InvalidRequestError as error:
            raise _invalid(self.task_id, error) from None
        except ValueError as error:
            raise AirflowFailException(f"{self.task_id}: {error}") from None
        try:
            found = self.hook.search_tiles(request)
        except ClearSkyError as error:
            raise _fail_fast(error) from error
        result = {"tile_guids": found.tile_guids, "minitile_guids": found.mini_tile_guids}
        self.log.info("Found %d tile(s) and %d minitile(s).", len(result["tile_guids"]), len(result["minitile_guids"]))
        return result


class ClearSkyOptimizeTilesOperator(_AoiOperator):
    """The cheapest tile and minitile cover of an area (free): ``{"tile_guids": [...], "minitile_guids": [...]}``.

    Give the area as ``wkt`` or ``geojson`` (either may be a ``.wkt``/``.geojson`` file).
    """

    def execute(self, context: Context) -> dict[str, list[str]]:
        """Return the cheapest tile and minitile cover of the area."""
        from airflow_provider_clearsky.models.geometry import order_wkt

        given = [(name, value) for name, value in (("wkt", self.wkt), ("geojson", self.geojson)) if value]
        if len(given) != 1:
            raise AirflowFailException(f"{self.task_id}: give exactly one area: wkt or geojson")
        argument, area = given[0]
        try:
            order_wkt(area)  # the hook's own check, here to name the argument given
        except ValueError as error:
            raise AirflowFailException(f"{self.task_id}: {argument} {error}") from None
        try:
            found = self.hook.optimize_tiles(area)
        except ClearSkyError as error:
            raise _fail_fast(error) from error
        result = {"tile_guids": list(found.tiles), "minitile_guids": list(found.mini_tiles)}
        self.log.info(
            "Optimized cover: %d tile(s) and %d minitile(s).", len(result["tile_guids"]), len(result["minitile_guids"])
        )
        return result
