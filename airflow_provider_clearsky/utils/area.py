"""Areas of interest: their equal-area size, and whether the area a server echoes is the one requested.

An order's answer echoes its area of interest, but not necessarily as sent: the docs bill orders by
bounding-box extent, and the service may echo each polygon's bounding box, the whole AOI's box, a normalised
(re-oriented, rounded, re-ordered) geometry, or the same polygons inside a GEOMETRYCOLLECTION. Comparing
coordinates would then miss our own order, and a create that lost its answer would order a second time.
So areas are compared by overlap, never by coordinates.

shapely is imported on first use only (nothing heavy at DAG-parse time).
"""

from __future__ import annotations

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


__all__ = ["MIN_INTERSECTION_OVER_UNION", "areas_match"]


def equal_area_km2(geometry: BaseGeometry) -> float:
    """Area of a lon/lat geometry in km², on the authalic sphere through the sinusoidal projection.

    The sinusoidal projection is equal-area, so after densifying edges to 0.01° the planar area of the
    projected geometry is the spherical area; against the WGS84 ellipsoid the error is below 0.3 %.
    """
    import numpy as np
    import shapely

    if geometry.is_empty:
        return 0.0
    dense = shapely.segmentize(geometry, max_segment_length=0.01)

    def project(coords: Any) -> Any:
        lon = np.radians(coords[:, 0])
        lat = np.radians(coords[:, 1])
        return np.column_stack((AUTHALIC_RADIUS_M * lon * np.cos(lat), AUTHALIC_RADIUS_M * lat))

    return float(shapely.transform(dense, project).area) / 1e6
