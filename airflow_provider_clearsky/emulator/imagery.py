"""Imagery availability: which of an account's orders cover an area on a date, and whether that imagery is
produced and still stored (``search/available``, ``composite/available``; ``downloads`` builds on it)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from . import catalogue, geo, grid
from .errors import validation_error
from .lifecycle import date_available, produced_at, storage_end
from .records import Order
from .schemas import AoiBody, DownloadBody
from .store import RecordStore


class ImageryStore(RecordStore):
    """The availability endpoints' operations on the records."""

    def _matching_orders(self, key: str, model: str | None, constellations: list[str] | None) -> list[Order]:
        want_model = catalogue.find_model(model) if model else None
        if model and want_model is None:
            raise validation_error({"Model": [catalogue.unknown_model(model)]})
        want_const = None
        if constellations:
            canon = [catalogue.canonical_constellation(c) for c in constellations]
            unknown = [
                catalogue.unknown_constellation(c)
                for c, found in zip(constellations, canon, strict=True)
                if found is None
            ]
            if unknown:
                raise validation_error({"SatelliteConstellations": unknown})
            want_const = sorted({c for c in canon if c})
        out = []
        for o in self.orders.values():
            if o.key != key or o.canceled or o.denied:
                continue
            if want_model and o.model != want_model.name:
                continue
            if want_const and sorted(o.constellations) != want_const:
                continue
            out.append(o)
        return out

    def search_available(
        self, key: str, aoi: BaseGeometry, start: date, until: date | None, now: datetime
    ) -> dict[str, Any]:
        with self.lock:
            groups: dict[tuple[str, tuple[str, ...]], list[dict[str, Any]]] = {}
            for o in self._matching_orders(key, None, None):
                inter = o.geometry.intersection(aoi)
                if inter.is_empty or inter.area <= 0:
                    continue
                dates = [
                    d.isoformat()
                    for d in o.scheduled_dates()
                    if d >= start and (until is None or d <= until) and date_available(o, d, now, self.config.durations)
                ]
                groups.setdefault((o.model, tuple(o.constellations)), []).append(
                    {"Wkt": geo.to_wkt(inter), "Dates": dates}
                )
            return {
                "ModelImageDates": [
                    {"Model": m, "SatelliteConstellations": list(c), "DatesByGeog": geogs}
                    for (m, c), geogs in groups.items()
                ]
            }

    def coverage(
        self, key: str, aoi: BaseGeometry, d: date, model: str | None, constellations: list[str] | None, now: datetime
    ) -> dict[str, Any]:
        orders = [o for o in self._matching_orders(key, model, constellations) if o.geometry.intersects(aoi)]
        any_order = shapely.union_all([o.geometry for o in orders]) if orders else shapely.Polygon()
        sched = [o for o in orders if d in o.scheduled_dates()]
        sched_union = shapely.union_all([o.geometry for o in sched]) if sched else shapely.Polygon()
        ready = [o for o in sched if date_available(o, d, now, self.config.durations)]
        ready_union = shapely.union_all([o.geometry for o in ready]) if ready else shapely.Polygon()
        stored = [o for o in sched if now < storage_end(o, d)]
        produced = [o for o in sched if o.accepted_at is not None and produced_at(o, d, self.config.durations) <= now]
        return {
            "orders": orders,
            "scheduled": sched,
            "ready": ready,
            "covers_any": covers(any_order, aoi),
            "covers_sched": covers(sched_union, aoi),
            "touch_sched": sched_union.intersects(aoi) and sched_union.intersection(aoi).area > 0,
            "covers_ready": covers(ready_union, aoi),
            "touch_ready": ready_union.intersects(aoi) and ready_union.intersection(aoi).area > 0,
            "stored": bool(stored),
            "all_produced": bool(sched) and len(produced) == len(sched),
        }

    def composite_available(self, key: str, body: DownloadBody, now: datetime) -> dict[str, bool]:
        with self.lock:
            aoi = request_aoi(body)
            if body.Date is None:
                raise validation_error({"Date": ["'Date' must not be empty."]})
            epsg = body.EpsgProjection if body.EpsgProjection is not None else geo.AUTO_UTM_EPSG
            if not geo.is_supported_epsg(epsg):
                raise validation_error({"EpsgProjection": [EPSG_MESSAGE]})
            cov = self.coverage(key, aoi, body.Date, body.Model, body.SatelliteConstellations, now)
            in_data = aoi.bounds[1] >= -80.0 and aoi.bounds[3] <= 84.0
            return {
                "IntersectedActiveZones": bool(grid.tiles_intersecting(aoi)),
                "IntersectedActiveZonesUtmEpsg": in_data,
                "FullyAvailable": cov["covers_ready"],
                "UncertaintyAvailable": cov["covers_ready"],
                "PartiallyAvailable": cov["touch_ready"] and not cov["covers_ready"],
                "PartiallyUncertaintyAvailable": cov["touch_ready"] and not cov["covers_ready"],
                "PolygonInDataArea": in_data,
                "DataAvailableForUser": cov["touch_sched"],
                "DataOnZoneDataFrequencyDate": bool(cov["scheduled"]),
                "AllImagesPredicted": cov["all_produced"],
                "AnyImageWithinStorageMonths": cov["stored"],
                "OrdersCoverPolygon": cov["covers_any"],
            }


EPSG_MESSAGE = "'EpsgProjection' must be a valid EPSG code (e.g. 4326, 3857, 32632, 25832, 3035) or 47000 (auto-UTM)."


def covers(union: BaseGeometry, aoi: BaseGeometry) -> bool:
    if union.is_empty:
        return False
    rest = aoi.difference(union)
    return bool(rest.is_empty or rest.area <= 1e-9 * max(aoi.area, 1e-12) + 1e-14)


def request_aoi(body: AoiBody) -> BaseGeometry:
    if (body.Wkt is None) == (body.GeoJson is None):
        raise validation_error({"Wkt": ["Specify exactly one of Wkt or GeoJson."]})
    try:
        return geo.download_aoi(geo.parse_geometry(body.Wkt, body.GeoJson))
    except geo.GeometryError as exc:
        raise validation_error({"Wkt" if body.Wkt is not None else "GeoJson": [str(exc)]}) from exc
