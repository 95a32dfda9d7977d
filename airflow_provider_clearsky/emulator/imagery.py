"""Imagery: availability searches and checks, download estimates, and preparing (validating, charging and
laying out) a download."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from . import catalogue, errors, geo, grid
from .config import ATTRIBUTION_PLACEHOLDER
from .dates import iso_z
from .errors import ApiError, validation_error
from .geotiff import GeoTiffStream, RasterSpec
from .lifecycle import date_available, produced_at, storage_end
from .records import Order, PlannedDownload
from .schemas import AoiBody, DownloadBody
from .store import RecordStore

ALLOWED_RESOLUTIONS = (10, 20, 40, 80, 160, 320, 640, 1280)


class ImageryStore(RecordStore):
    """The availability and download endpoints' operations on the records."""

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
                raise validation_error({"EpsgProjection": [_EPSG_MSG]})
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

    # ------------------------------------------------------------------ downloads

    def composite_estimate(self, key: str, body: DownloadBody, now: datetime) -> dict[str, Any]:
        with self.lock:
            aoi = request_aoi(body)
            spec, _bands = self._raster(key, body, aoi, None)
            area = geo.geodesic_area_km2(aoi)
            stream = GeoTiffStream(spec)
            return {
                "AreaEstimateKm2": round(area, 4),
                "CreditEstimate": float(processing_units(area)),
                "FileSizeEstimateMB": round(stream.size / 1e6, 3),
            }

    def _raster(
        self, key: str, body: DownloadBody, aoi: BaseGeometry, default_epsg: int | None
    ) -> tuple[RasterSpec, list[str]]:
        acct = self.accounts[key]
        errs: dict[str, list[str]] = {}
        res = body.Resolution if body.Resolution is not None else 10
        if res not in ALLOWED_RESOLUTIONS:
            errs["Resolution"] = [f"'Resolution' must be one of {', '.join(map(str, ALLOWED_RESOLUTIONS))}."]
        epsg = body.EpsgProjection if body.EpsgProjection is not None else (default_epsg or geo.AUTO_UTM_EPSG)
        if not geo.is_supported_epsg(epsg):
            errs["EpsgProjection"] = [_EPSG_MSG]
        dtype = (body.DataType or "int16").lower()
        if dtype not in ("int16", "uint8"):
            errs["DataType"] = ["'DataType' must be INT16 or UINT8."]
        if (body.FileType or "tif").lower() not in ("tif", "tiff"):
            errs["FileType"] = ["The emulator only produces 'tif'."]
        psm = (body.PixelSelectionMode or "intersect").lower()
        if psm not in ("intersect", "contained"):
            errs["PixelSelectionMode"] = ["'PixelSelectionMode' must be intersect or contained."]
        utm_mode = (body.UtmDataSelectionMode or "combined_utm").lower()
        if utm_mode not in ("single_utm_fully_covered", "single_utm", "combined_utm"):
            errs["UtmDataSelectionMode"] = ["Must be single_utm_fully_covered, single_utm or combined_utm."]
        if body.Level is not None and body.Level not in (1, 2):
            errs["Level"] = ["'Level' must be 1 or 2."]
        model = catalogue.find_model(body.Model) if body.Model else catalogue.find_model("Stratus2")
        if model is None:
            errs["Model"] = [catalogue.unknown_model(body.Model or "")]
        bands: list[str] = []
        try:
            bands = catalogue.parse_bandnames(body.Bandnames, model)
        except catalogue.BandError as exc:
            errs["Bandnames"] = [str(exc)]
        if errs:
            raise validation_error(errs)
        if len(bands) > acct.config.max_total_bands:
            raise ApiError(
                400,
                errors.BAND_LIMIT,
                f"Max band count reached: {len(bands)} bands requested, "
                f"MaxTotalBands is {acct.config.max_total_bands}.",
                {"Bandnames": [f"At most {acct.config.max_total_bands} bands per request."]},
            )
        area = geo.geodesic_area_km2(aoi)
        if area > acct.config.max_composite_area_km2:
            raise ApiError(
                400,
                errors.AREA_LIMIT,
                f"Max area limit reached: {area:.1f} km2 requested, MaxCompositeAreaKm2 is "
                f"{acct.config.max_composite_area_km2}.",
                {"Wkt": [f"Split the area into parts of at most {acct.config.max_composite_area_km2} km2."]},
            )
        epsg = geo.resolve_epsg(epsg, aoi)
        if geo.is_geographic_epsg(epsg):
            step_x = step_y = res / 111_320.0
        else:
            step_x = step_y = float(res)
        minx, miny, maxx, maxy = geo.projected_bounds(aoi, epsg)
        rnd_lo, rnd_hi = (math.ceil, math.floor) if psm == "contained" else (math.floor, math.ceil)
        x0 = rnd_lo(minx / step_x - 1e-9) * step_x
        x1 = rnd_hi(maxx / step_x + 1e-9) * step_x
        y0 = rnd_lo(miny / step_y - 1e-9) * step_y
        y1 = rnd_hi(maxy / step_y + 1e-9) * step_y
        width = max(1, round((x1 - x0) / step_x))
        height = max(1, round((y1 - y0) / step_y))
        if y1 <= y0 or x1 <= x0:
            x1, y1 = x0 + step_x, y0 + step_y
        meta = {
            "ATTRIBUTION": ATTRIBUTION_PLACEHOLDER,
            "MODEL": model.name if model else "",
            "DATE": body.Date.isoformat() if body.Date else "",
            "LEVEL": str(body.Level or 2),
            "HARMONIZE": str(body.Harmonize if body.Harmonize is not None else True).lower(),
        }
        seed = (body.Date.toordinal() if body.Date else 0) % 997
        spec = RasterSpec(width, height, bands, dtype, epsg, x0, y1, step_x, step_y, seed=seed, metadata=meta)
        try:
            GeoTiffStream(spec)
        except ValueError as exc:
            raise validation_error({"Resolution": [f"{exc}; request a coarser resolution or fewer bands."]}) from exc
        return spec, bands

    def prepare_download(self, key: str, body: DownloadBody, kind: str, now: datetime) -> PlannedDownload:
        """Validate, check coverage and availability, charge, and lay out the GeoTIFF."""
        with self.lock:
            default_epsg = None
            cell_guid = ""
            if kind == "composite":
                aoi = request_aoi(body)
                name = f"composite_{(body.Model or 'Stratus2')}"
            else:
                field_name = "TileGuid" if kind == "tile" else "MiniTileGuid"
                guid = body.TileGuid if kind == "tile" else body.MiniTileGuid
                if not guid:
                    raise validation_error({field_name: [f"'{field_name}' must not be empty."]})
                cell = grid.parse_guid(guid)
                if cell is None or cell.is_mini != (kind == "minitile"):
                    raise errors.not_found(
                        f"Unknown {kind} '{guid}'.", {field_name: [f"Unknown {kind} GUID '{guid}'."]}
                    )
                aoi = cell.geometry
                default_epsg = cell.epsg
                name = f"{kind}_{cell.guid}"
                cell_guid = cell.guid
            if body.Date is None:
                raise validation_error({"Date": ["'Date' must not be empty."]})
            spec, _ = self._raster(key, body, aoi, default_epsg)
            d = body.Date
            cov = self.coverage(key, aoi, d, body.Model, body.SatelliteConstellations, now)
            partial = bool(body.AllowPartialImage)
            if not (cov["covers_sched"] or (partial and cov["touch_sched"])):
                raise ApiError(
                    400,
                    errors.NOT_ORDERED,
                    f"The area/date is not covered by an order: no order of yours covers the "
                    f"{'area' if not cov['orders'] else 'area on ' + d.isoformat()}.",
                    {"Date": [d.isoformat()]},
                )
            if not (cov["covers_ready"] or (partial and cov["touch_ready"])):
                why = "not produced yet" if cov["stored"] else "outside the storage period"
                raise ApiError(
                    400,
                    errors.NOT_PRODUCED,
                    f"No imagery available for this area on {d.isoformat()}: the date is {why}.",
                    {"Date": [d.isoformat()]},
                )
            ready = [o for o in cov["ready"] if o.geometry.intersects(aoi)]
            # A pass is one download of the data once: per date for composites, per date and grid cell for
            # tile/minitile downloads (downloading each cell of a tile order once is one pass, not one per cell).
            pass_key = f"{d.isoformat()}/{cell_guid}" if cell_guid else d.isoformat()
            with_passes = [o for o in ready if o.passes_used.get(pass_key, 0) < o.api_requests]
            pass_union = shapely.union_all([o.geometry for o in with_passes]) if with_passes else shapely.Polygon()
            if not (covers(pass_union, aoi) or (partial and pass_union.intersects(aoi))):
                raise ApiError(
                    400,
                    errors.DOMAIN_RULE,
                    f"The ApiRequests download passes of the covering order(s) for {d.isoformat()} are used up.",
                    {
                        "ApiRequests": [
                            f"{o.guid}: {o.api_requests} of {o.api_requests} used"
                            for o in ready
                            if o not in with_passes
                        ]
                    },
                )
            acct = self.accounts[key]
            units = processing_units(geo.geodesic_area_km2(aoi))
            if acct.credit_amount - units < -acct.config.credit_limit:
                raise ApiError(
                    400,
                    errors.INSUFFICIENT_CREDITS,
                    f"Insufficient processing units: {units} needed, {acct.credit_amount:.0f} left.",
                )
            acct.credit_amount -= units
            for o in with_passes:
                o.passes_used[pass_key] = o.passes_used.get(pass_key, 0) + 1
            self.charges.append(
                {
                    "kind": "download",
                    "endpoint": kind,
                    "key": key,
                    "units": units,
                    "orders": [o.guid for o in with_passes],
                    "date": d.isoformat(),
                    "at": iso_z(now),
                }
            )
            self.save(now)
            res = body.Resolution or 10
            filename = f"{name}_{d.isoformat()}_EPSG{spec.epsg}_{res}m.tif"
            return PlannedDownload(GeoTiffStream(spec), filename, body.UploadUrl)


_EPSG_MSG = "'EpsgProjection' must be a valid EPSG code (e.g. 4326, 3857, 32632, 25832, 3035) or 47000 (auto-UTM)."


def processing_units(area_km2: float) -> int:
    return max(1, math.ceil(area_km2 / catalogue.KM2_PER_PROCESSING_UNIT))


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
