"""Areas of interest: parse WKT or GeoJSON with shapely, validate, and shape them the way the API wants.

shapely is imported on first use, never at DAG-parse time.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shapely.geometry.base import BaseGeometry

Aoi = str | Mapping[str, Any]
#: Wider than this, a polygon is almost surely one that crosses the antimeridian, read the long way round.
MAX_POLYGON_WIDTH_DEG = 180.0


def parse_aoi(value: Aoi) -> BaseGeometry:
    """Parse a WKT string or a GeoJSON geometry, Feature or FeatureCollection (dict or JSON text).

    Raises ``ValueError`` with a message that says what is wrong and how to fix it.
    """
    import shapely
    from shapely.geometry import shape

    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                return parse_aoi(json.loads(text))
            except json.JSONDecodeError as error:
                raise ValueError(f"is not valid GeoJSON text ({error.msg}); pass a geometry object") from None
        try:
            with warnings.catch_warnings():  # GEOS warns before it raises on bad WKT; the raise says it all
                warnings.simplefilter("ignore", RuntimeWarning)
                geometry = shapely.from_wkt(text)
        except (shapely.errors.ShapelyError, ValueError, TypeError):
            raise ValueError("is not valid WKT; pass e.g. 'POLYGON ((lon lat, lon lat, ...))' in EPSG:4326") from None
        if geometry is None:
            raise ValueError("is empty; pass a polygon or multipolygon")
        return geometry
    if isinstance(value, Mapping):
        kind = value.get("type")
        try:
            if kind == "Feature":
                return parse_aoi(value.get("geometry") or {})
            if kind == "FeatureCollection":
                geometries = [parse_aoi(feature.get("geometry") or {}) for feature in value.get("features", [])]
                return shapely.GeometryCollection(geometries)
            return shape(value)
        except (shapely.errors.ShapelyError, ValueError, TypeError, KeyError, AttributeError, IndexError):
            raise ValueError(
                "is not a valid GeoJSON geometry; pass {'type': 'Polygon', 'coordinates': [[[lon, lat], ...]]}"
            ) from None
    raise ValueError(f"must be WKT text or a GeoJSON object, not {type(value).__name__}")


def polygonal_parts(geometry: BaseGeometry) -> list[BaseGeometry]:
    """Split an AOI into the polygons and multipolygons the API accepts, validating each.

    Each POLYGON is its own AOI for billing; a MULTIPOLYGON is one AOI.
    """
    from shapely.validation import explain_validity

    if geometry.is_empty:
        raise ValueError("is empty; pass a polygon or multipolygon")
    if geometry.geom_type == "GeometryCollection":
        parts = [part for member in geometry.geoms for part in polygonal_parts(member)]
        if not parts:
            raise ValueError("is an empty GeometryCollection; pass at least one polygon")
        return parts
    if geometry.geom_type not in ("Polygon", "MultiPolygon"):
        raise ValueError(f"is a {geometry.geom_type}; pass a Polygon or MultiPolygon (areas, not points or lines)")
    if not geometry.is_valid:
        raise ValueError(
            f"is not a valid polygon ({explain_validity(geometry)}); fix the ring (shapely's make_valid can help)"
        )
    min_lon, min_lat, max_lon, max_lat = geometry.bounds
    if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
        raise ValueError("has coordinates outside lon -180..180 / lat -90..90; pass EPSG:4326 in lon, lat order")
    for polygon in getattr(geometry, "geoms", [geometry]):
        west, _, east, _ = polygon.bounds
        if east - west > MAX_POLYGON_WIDTH_DEG:
            raise ValueError(
                f"has a polygon {east - west:.1f} degrees of longitude wide ({west:g} to {east:g}): a polygon that "
                "crosses the antimeridian (180°) is read the long way round, as a band around the globe; split it "
                "at 180° into two polygons and pass them as a MULTIPOLYGON"
            )
    return [geometry]


def order_wkt(value: Aoi) -> str:
    """The AOI as the GEOMETRYCOLLECTION WKT that polygon-mode orders require."""
    import shapely

    parts = polygonal_parts(parse_aoi(value))
    return str(shapely.to_wkt(shapely.GeometryCollection(parts), rounding_precision=-1, trim=True))


def order_geojson(value: Aoi) -> dict[str, Any]:
    """The AOI as a GeoJSON GeometryCollection object (plain geometry, not a Feature)."""
    from shapely.geometry import mapping

    parts = polygonal_parts(parse_aoi(value))
    return {"type": "GeometryCollection", "geometries": [_plain(mapping(part)) for part in parts]}


def imagery_wkt(value: Aoi) -> str:
    """The AOI as the single Polygon or MultiPolygon WKT that search and download endpoints take."""
    import shapely

    parts = polygonal_parts(parse_aoi(value))
    if len(parts) == 1:
        single = parts[0]
    else:
        polygons = [poly for part in parts for poly in getattr(part, "geoms", [part])]
        single = shapely.MultiPolygon(polygons)
        if not single.is_valid:
            single = shapely.union_all(parts)
    return str(shapely.to_wkt(single, rounding_precision=-1, trim=True))


def imagery_geojson(value: Aoi) -> dict[str, Any]:
    """The AOI as a single GeoJSON Polygon or MultiPolygon for search and download endpoints."""
    import shapely
    from shapely.geometry import mapping

    geojson: dict[str, Any] = _plain(mapping(shapely.from_wkt(imagery_wkt(value))))
    return geojson


def _plain(value: Any) -> Any:
    """shapely's mapping() uses tuples; JSON wants lists."""
    if isinstance(value, (tuple, list)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value
