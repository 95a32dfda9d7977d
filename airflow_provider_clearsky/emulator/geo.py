"""Geometry helpers without pyproj: AOI parsing, geodesic area, UTM/Web-Mercator forward projections.

* Area: spherical polygon area on the WGS84 authalic sphere (R = 6371007.2 m), the formula of
  Chamberlain & Duquette (2007): ``A = R^2/2 * |sum (lon2 - lon1) * (2 + sin lat1 + sin lat2)|``. Good to
  well under 0.5 % for field- to tile-sized AOIs.
* UTM: Krueger's series for the transverse Mercator projection on WGS84 (accurate to mm within a zone).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, mapping, shape
from shapely.geometry.base import BaseGeometry

AUTHALIC_RADIUS_M = 6_371_007.2
WGS84_A = 6_378_137.0
WGS84_F = 1 / 298.257223563
UTM_K0 = 0.9996
AUTO_UTM_EPSG = 47000


class GeometryError(ValueError):
    """An AOI that cannot be used; the message is user-facing."""


def _lower_keys(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k).lower(): _lower_keys(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_lower_keys(v) for v in obj]
    return obj


def parse_geometry(wkt: str | None, geojson: dict[str, Any] | None) -> BaseGeometry:
    """Parse exactly one of a WKT string or a GeoJSON geometry object (keys in any casing)."""
    try:
        if wkt is not None:
            geom = shapely.from_wkt(wkt)
        elif geojson is not None:
            data = _lower_keys(geojson)
            if "type" in data and isinstance(data["type"], str):
                data["type"] = _canonical_geojson_type(data["type"])
            for sub in data.get("geometries") or []:
                if isinstance(sub, dict) and isinstance(sub.get("type"), str):
                    sub["type"] = _canonical_geojson_type(sub["type"])
            geom = shape(data)
        else:
            raise GeometryError("no geometry given")
    except GeometryError:
        raise
    except Exception as exc:
        raise GeometryError(f"geometry could not be parsed: {exc}") from exc
    if geom is None or geom.is_empty:
        raise GeometryError("geometry is empty")
    return geom


def _canonical_geojson_type(name: str) -> str:
    types = {
        t.lower(): t
        for t in (
            "Point",
            "MultiPoint",
            "LineString",
            "MultiLineString",
            "Polygon",
            "MultiPolygon",
            "GeometryCollection",
        )
    }
    return types.get(name.lower(), name)


def split_aois(geom: BaseGeometry) -> list[BaseGeometry]:
    """Order AOIs: each POLYGON of a GEOMETRYCOLLECTION is one AOI, a MULTIPOLYGON is one (pooled) AOI.

    Conflict 8 of docs/api.md#conflicts: a bare POLYGON/MULTIPOLYGON (current docs' curl) is accepted as one AOI, the
    GEOMETRYCOLLECTION form (vendor repo tool, old docs) is the canonical one.
    """
    parts = list(geom.geoms) if geom.geom_type == "GeometryCollection" else [geom]
    out: list[BaseGeometry] = []
    for part in parts:
        if not isinstance(part, (Polygon, MultiPolygon)):
            raise GeometryError(f"only POLYGON and MULTIPOLYGON are allowed, got {part.geom_type.upper()}")
        check_lonlat(part)
        if not part.is_valid:
            raise GeometryError(f"invalid geometry: {shapely.is_valid_reason(part)}")
        out.append(part)
    if not out:
        raise GeometryError("the geometry collection is empty")
    return out


def check_lonlat(geom: BaseGeometry) -> None:
    minx, miny, maxx, maxy = geom.bounds
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        raise GeometryError("coordinates must be EPSG:4326 longitude/latitude")


def download_aoi(geom: BaseGeometry) -> BaseGeometry:
    """Downloads/search accept Polygon or MultiPolygon (a collection of them is unioned)."""
    parts = split_aois(geom)
    return parts[0] if len(parts) == 1 else shapely.union_all(parts)


def _ring_area(coords: np.ndarray) -> float:
    lon = np.radians(coords[:, 0])
    lat = np.radians(coords[:, 1])
    lon1, lon2 = lon[:-1], lon[1:]
    lat1, lat2 = lat[:-1], lat[1:]
    s = np.sum((lon2 - lon1) * (2 + np.sin(lat1) + np.sin(lat2)))
    return float(abs(s) * AUTHALIC_RADIUS_M**2 / 2.0)


def geodesic_area_km2(geom: BaseGeometry) -> float:
    """Area in km^2 of a lon/lat (Multi)Polygon or collection on the authalic sphere."""
    if geom.is_empty:
        return 0.0
    if isinstance(geom, Polygon):
        area = _ring_area(np.asarray(geom.exterior.coords))
        for hole in geom.interiors:
            area -= _ring_area(np.asarray(hole.coords))
        return area / 1e6
    if hasattr(geom, "geoms"):
        return sum(geodesic_area_km2(g) for g in geom.geoms)
    return 0.0


def bbox_sides_m(geom: BaseGeometry) -> tuple[float, float]:
    """Approximate (width, height) of the lon/lat bbox in metres, width measured at the bbox centre."""
    minx, miny, maxx, maxy = geom.bounds
    lat_c = math.radians((miny + maxy) / 2)
    m_per_deg = math.pi * AUTHALIC_RADIUS_M / 180
    return (maxx - minx) * m_per_deg * math.cos(lat_c), (maxy - miny) * m_per_deg


def to_wkt(geom: BaseGeometry) -> str:
    return str(shapely.to_wkt(geom, rounding_precision=7, trim=True))


def to_geojson(geom: BaseGeometry) -> dict[str, Any]:
    return dict(mapping(geom))


def echo_wkt(wkt: str, echo: str) -> str:
    """An order's area as order answers echo it: ``exact`` as sent, ``bbox`` each polygon's bounding box.

    With ``bbox`` every POLYGON of the collection becomes its box and a MULTIPOLYGON the MULTIPOLYGON of its
    members' boxes, still one GEOMETRYCOLLECTION (the docs bill orders by bounding-box extent; how the real
    service echoes is undocumented, so the provider must not rely on an exact echo).
    """
    if echo != "bbox":
        return wkt
    geom = shapely.from_wkt(wkt)
    parts = list(geom.geoms) if geom.geom_type == "GeometryCollection" else [geom]
    boxes: list[BaseGeometry] = []
    for part in parts:
        if isinstance(part, MultiPolygon):
            boxes.append(MultiPolygon([shapely.box(*poly.bounds) for poly in part.geoms]))
        else:
            boxes.append(shapely.box(*part.bounds))
    return to_wkt(shapely.GeometryCollection(boxes))


# --------------------------------------------------------------------------- projections


def utm_epsg_for(lon: float, lat: float) -> int:
    zone = min(60, max(1, math.floor((lon + 180) / 6) + 1))
    return (32600 if lat >= 0 else 32700) + zone


def utm_zone(epsg: int) -> tuple[int, bool]:
    """(zone, north) for EPSG 326xx/327xx."""
    if 32601 <= epsg <= 32660:
        return epsg - 32600, True
    if 32701 <= epsg <= 32760:
        return epsg - 32700, False
    raise ValueError(f"EPSG:{epsg} is not a WGS84 UTM zone")


def _builtin_epsg(epsg: int) -> bool:
    return epsg in (4326, 3857) or 32601 <= epsg <= 32660 or 32701 <= epsg <= 32760


@functools.cache
def _crs(epsg: int) -> Any:
    """The pyproj CRS of ``epsg``, or None when the EPSG registry knows no such code."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        return CRS.from_epsg(epsg)
    except CRSError:
        return None


def is_supported_epsg(epsg: int) -> bool:
    """Any real EPSG coordinate reference system ("any valid EPSG", docs/api.md#downloads), or 47000 (auto-UTM)."""
    if epsg == AUTO_UTM_EPSG or _builtin_epsg(epsg):
        return True
    return epsg > 0 and _crs(epsg) is not None


def is_geographic_epsg(epsg: int) -> bool:
    """Degrees rather than metres: 4326 and other geographic CRSs."""
    if _builtin_epsg(epsg):
        return epsg == 4326
    crs = _crs(epsg)
    return bool(crs is not None and crs.is_geographic)


_N = WGS84_F / (2 - WGS84_F)
_A_RECT = WGS84_A / (1 + _N) * (1 + _N**2 / 4 + _N**4 / 64)
_ALPHA = (
    _N / 2 - 2 * _N**2 / 3 + 5 * _N**3 / 16,
    13 * _N**2 / 48 - 3 * _N**3 / 5,
    61 * _N**3 / 240,
)


def transverse_mercator(
    lon: np.ndarray, lat: np.ndarray, lon0: float, k0: float, false_e: float, false_n: float
) -> tuple[np.ndarray, np.ndarray]:
    """Krueger-series transverse Mercator forward projection on WGS84 (degrees in, metres out)."""
    phi = np.radians(lat)
    dlam = np.radians(lon - lon0)
    c = 2 * math.sqrt(_N) / (1 + _N)
    t = np.sinh(np.arctanh(np.sin(phi)) - c * np.arctanh(c * np.sin(phi)))
    xi = np.arctan2(t, np.cos(dlam))
    eta = np.arctanh(np.sin(dlam) / np.sqrt(1 + t**2))
    e_sum = eta.copy()
    n_sum = xi.copy()
    for j, alpha in enumerate(_ALPHA, start=1):
        e_sum += alpha * np.cos(2 * j * xi) * np.sinh(2 * j * eta)
        n_sum += alpha * np.sin(2 * j * xi) * np.cosh(2 * j * eta)
    return false_e + k0 * _A_RECT * e_sum, false_n + k0 * _A_RECT * n_sum


def project(lon: np.ndarray, lat: np.ndarray, epsg: int) -> tuple[np.ndarray, np.ndarray]:
    """Project lon/lat arrays to EPSG 4326 (identity), 3857 or a WGS84 UTM zone."""
    if epsg == 4326:
        return lon.astype(float), lat.astype(float)
    if epsg == 3857:
        x = WGS84_A * np.radians(lon)
        y = WGS84_A * np.log(np.tan(math.pi / 4 + np.radians(np.clip(lat, -85.06, 85.06)) / 2))
        return x, y
    if not _builtin_epsg(epsg):
        return _pyproj_project(lon, lat, epsg)
    zone, north = utm_zone(epsg)
    return transverse_mercator(lon, lat, zone * 6 - 183, UTM_K0, 500_000.0, 0.0 if north else 10_000_000.0)


def _pyproj_project(lon: np.ndarray, lat: np.ndarray, epsg: int) -> tuple[np.ndarray, np.ndarray]:
    from pyproj import Transformer

    transformer = Transformer.from_crs(4326, epsg, always_xy=True)
    x, y = transformer.transform(lon.astype(float), lat.astype(float))
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float)


def resolve_epsg(epsg: int, geom: BaseGeometry) -> int:
    """``47000`` = auto-UTM: the UTM zone of the AOI centroid."""
    if epsg == AUTO_UTM_EPSG:
        c = geom.centroid
        return utm_epsg_for(c.x, c.y)
    return epsg


def projected_bounds(geom: BaseGeometry, epsg: int) -> tuple[float, float, float, float]:
    """Bounds in ``epsg`` of all vertices of ``geom`` (densified bbox edges included)."""
    coords = shapely.get_coordinates(geom)
    minx, miny, maxx, maxy = geom.bounds
    edge = np.linspace(0.0, 1.0, 17)
    bx = np.concatenate(
        [minx + (maxx - minx) * edge, np.full(17, maxx), maxx - (maxx - minx) * edge, np.full(17, minx)]
    )
    by = np.concatenate(
        [np.full(17, miny), miny + (maxy - miny) * edge, np.full(17, maxy), maxy - (maxy - miny) * edge]
    )
    if epsg == 4326:
        return minx, miny, maxx, maxy
    lon = np.concatenate([coords[:, 0], bx])
    lat = np.concatenate([coords[:, 1], by])
    x, y = project(lon, lat, epsg)
    return float(x.min()), float(y.min()), float(x.max()), float(y.max())
