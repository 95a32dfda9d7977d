"""Areas of interest: their equal-area size, and whether the area a server echoes is the one requested.

An order's answer echoes its area of interest, but not necessarily as sent: the docs bill orders by
bounding-box extent, and the service may echo each polygon's bounding box, the whole AOI's box, a normalised
(re-oriented, rounded, re-ordered) geometry, or the same polygons inside a GEOMETRYCOLLECTION. Comparing
coordinates would then miss our own order, and a create that lost its answer would order a second time.
So areas are compared by overlap, never by coordinates.

shapely is imported on first use only (nothing heavy at DAG-parse time).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shapely.geometry.base import BaseGeometry

#: Smallest intersection over union at which two areas are "the same area".
#:
#: Why 0.9: rounding coordinates to 1e-6 degrees, re-orienting rings, splitting a multipolygon into a
#: collection or snapping to the 10 m pixel grid change a field-sized (1 ha and up) area by a few percent at
#: most, far above 0.9. Two areas that differ by more than a tenth of their union are different fields for a
#: user, and an order of a different field must not be taken for ours. The rest of an order's fingerprint
#: (model, constellations, dates, cadence, storage, creation after the attempt began) must match as well,
#: and when more than one order still matches, the caller fails loudly rather than choosing.
#: IoU is computed on lon/lat degrees: over a field- or tile-sized area the scale distortion is the same for
#: both shapes, so the ratio is unaffected.
MIN_INTERSECTION_OVER_UNION = 0.9
#: Mean radius of the authalic (equal-area) sphere of WGS84, in metres.
AUTHALIC_RADIUS_M = 6_371_007.2


def areas_match(requested_wkt: str, echoed_wkt: str) -> bool:
    """Whether ``echoed_wkt`` (the AOI a server echoes) is the area ``requested_wkt`` asked for.

    Both are WKT in EPSG:4326: POLYGON, MULTIPOLYGON, GEOMETRYCOLLECTION of those, or a box. The echo matches
    when its intersection over union with one of these readings of the request reaches
    :data:`MIN_INTERSECTION_OVER_UNION`: the requested area itself, each of its polygons' bounding boxes,
    each of its parts' (polygon or multipolygon) bounding boxes, or the whole request's bounding box.

    Raises ``ValueError`` when either text is not a readable area: an echo we cannot read proves neither that
    the order is ours nor that it is not, so the caller must not order again on it.
    """
    requested = _parse(requested_wkt, "requested_wkt")
    echoed = _area(_parse(echoed_wkt, "echoed_wkt"), "echoed_wkt")
    return any(_iou(reading, echoed) >= MIN_INTERSECTION_OVER_UNION for reading in _readings(requested))


def _parse(wkt: str, name: str) -> BaseGeometry:
    import shapely

    try:
        geometry = shapely.from_wkt(wkt)
    except (shapely.errors.ShapelyError, ValueError, TypeError):
        raise ValueError(f"{name} is not valid WKT: {str(wkt)[:80]!r}") from None
    if geometry is None or geometry.is_empty:
        raise ValueError(f"{name} is empty")
    return geometry


def _area(geometry: BaseGeometry, name: str) -> BaseGeometry:
    """Return the polygons of ``geometry``, made valid, as one geometry."""
    import shapely

    polygons = [part for part in _flatten(geometry) if part.geom_type == "Polygon" and not part.is_empty]
    area = shapely.union_all([shapely.make_valid(polygon) for polygon in polygons]) if polygons else None
    if area is None or area.area <= 0:
        raise ValueError(f"{name} has no area (a {geometry.geom_type}); expected polygons")
    return area


def _flatten(geometry: BaseGeometry) -> list[BaseGeometry]:
    if hasattr(geometry, "geoms"):
        return [part for member in geometry.geoms for part in _flatten(member)]
    return [geometry]


def _readings(requested: BaseGeometry) -> list[BaseGeometry]:
    """Return the shapes a server may echo for ``requested``: itself, per-polygon boxes, per-part boxes, its box."""
    import shapely

    area = _area(requested, "requested_wkt")
    polygons = _flatten(area)
    parts = list(requested.geoms) if requested.geom_type == "GeometryCollection" else [requested]
    per_polygon_boxes = shapely.union_all([shapely.box(*polygon.bounds) for polygon in polygons])
    per_part_boxes = shapely.union_all([shapely.box(*part.bounds) for part in parts if not part.is_empty])
    return [area, per_polygon_boxes, per_part_boxes, shapely.box(*area.bounds)]


def _iou(a: BaseGeometry, b: BaseGeometry) -> float:
    union = a.union(b).area
    return float(a.intersection(b).area / union) if union > 0 else 0.0


__all__ = [
    "AUTHALIC_RADIUS_M",
    "MIN_INTERSECTION_OVER_UNION",
    "areas_match",
    "equal_area_km2",
    "geojson_area_km2",
]


def _ring_area_m2(coords: Iterable[Sequence[float]]) -> float:
    """Return the area enclosed by one lon/lat ring on the authalic sphere, in m².

    The spherical trapezoid rule (Chamberlain and Duquette, 2007): exact for edges along a parallel or a
    meridian, and within 0.3 % of the WGS84 ellipsoid's area.
    """
    points = [(math.radians(lon), math.radians(lat)) for lon, lat, *_ in coords]
    total = 0.0
    for (lon1, lat1), (lon2, lat2) in zip(points, points[1:] + points[:1], strict=True):
        total += (lon2 - lon1) * (2 + math.sin(lat1) + math.sin(lat2))
    return abs(total) * AUTHALIC_RADIUS_M**2 / 2


def geojson_area_km2(geojson: Mapping[str, Any]) -> float:
    """Return the area of a GeoJSON Polygon or MultiPolygon (lon/lat) on the authalic sphere, in km² (else 0).

    Pure Python, so a caller that must stay light at import time can use it without shapely or numpy.
    """
    kind = geojson.get("type")
    if kind == "Polygon":
        polygons = [geojson["coordinates"]]
    elif kind == "MultiPolygon":
        polygons = list(geojson["coordinates"])
    else:
        return 0.0
    area = 0.0
    for rings in polygons:
        if rings:
            area += _ring_area_m2(rings[0]) - sum(_ring_area_m2(hole) for hole in rings[1:])
    return area / 1e6


def equal_area_km2(geometry: BaseGeometry) -> float:
    """Return the area of a lon/lat shapely geometry on the authalic sphere, in km² (the polygons' area).

    Edges are densified to 0.01° first, so a long edge counts as the straight lon/lat line it is (the
    trapezoid rule alone is exact only along parallels and meridians).
    """
    import shapely
    import shapely.geometry

    if geometry.is_empty:
        return 0.0
    if geometry.geom_type == "GeometryCollection":
        return sum(equal_area_km2(part) for part in geometry.geoms)
    dense = shapely.segmentize(geometry, max_segment_length=0.01)
    return geojson_area_km2(shapely.geometry.mapping(dense))
