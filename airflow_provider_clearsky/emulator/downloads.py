"""Downloads: the estimate, the checks of a download's options against the account's limits, the raster's
layout, and preparing a download (coverage, download passes, processing units charged)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from . import catalogue, errors, geo, grid
from .config import ATTRIBUTION_PLACEHOLDER, AccountConfig
from .dates import iso_z
from .errors import ApiError, validation_error
from .geotiff import GeoTiffStream, RasterSpec
from .imagery import EPSG_MESSAGE, ImageryStore, covers, request_aoi
from .records import Order, PlannedDownload
from .schemas import DownloadBody

ALLOWED_RESOLUTIONS = (10, 20, 40, 80, 160, 320, 640, 1280)


@dataclass
class _Target:
    """What a download covers: a composite's area, or one tile or minitile."""

    aoi: BaseGeometry
    default_epsg: int | None
    name: str
    cell_guid: str


class DownloadStore(ImageryStore):
    """The download endpoints' operations on the records."""

    def composite_estimate(self, key: str, body: DownloadBody, now: datetime) -> dict[str, Any]:
        with self.lock:
            aoi = request_aoi(body)
            spec, _bands = raster_spec(self.accounts[key].config, body, aoi, None)
            area = geo.geodesic_area_km2(aoi)
            stream = GeoTiffStream(spec)
            return {
                "AreaEstimateKm2": round(area, 4),
                "CreditEstimate": float(processing_units(area)),
                "FileSizeEstimateMB": round(stream.size / 1e6, 3),
            }

    def prepare_download(self, key: str, body: DownloadBody, kind: str, now: datetime) -> PlannedDownload:
        """Validate, check coverage and availability, charge, and lay out the GeoTIFF."""
        with self.lock:
            target = _target(body, kind)
            if body.Date is None:
                raise validation_error({"Date": ["'Date' must not be empty."]})
            spec, _ = raster_spec(self.accounts[key].config, body, target.aoi, target.default_epsg)
            d = body.Date
            aoi = target.aoi
            cov = self.coverage(key, aoi, d, body.Model, body.SatelliteConstellations, now)
            partial = bool(body.AllowPartialImage)
            _check_ready(cov, d, partial)
            ready = [o for o in cov["ready"] if o.geometry.intersects(aoi)]
            # A pass is one download of the data once: per date for composites, per date and grid cell for
            # tile/minitile downloads (downloading each cell of a tile order once is one pass, not one per cell).
            pass_key = f"{d.isoformat()}/{target.cell_guid}" if target.cell_guid else d.isoformat()
            with_passes = _orders_with_passes(ready, pass_key, aoi, partial, d)
            self._charge_download(key, kind, aoi, with_passes, pass_key, d, now)
            res = body.Resolution or 10
            filename = f"{target.name}_{d.isoformat()}_EPSG{spec.epsg}_{res}m.tif"
            return PlannedDownload(GeoTiffStream(spec), filename, body.UploadUrl)

    def _charge_download(
        self, key: str, kind: str, aoi: BaseGeometry, with_passes: list[Order], pass_key: str, d: date, now: datetime
    ) -> None:
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


def processing_units(area_km2: float) -> int:
    return max(1, math.ceil(area_km2 / catalogue.KM2_PER_PROCESSING_UNIT))


def _target(body: DownloadBody, kind: str) -> _Target:
    if kind == "composite":
        return _Target(request_aoi(body), None, f"composite_{(body.Model or 'Stratus2')}", "")
    field_name = "TileGuid" if kind == "tile" else "MiniTileGuid"
    guid = body.TileGuid if kind == "tile" else body.MiniTileGuid
    if not guid:
        raise validation_error({field_name: [f"'{field_name}' must not be empty."]})
    cell = grid.parse_guid(guid)
    if cell is None or cell.is_mini != (kind == "minitile"):
        raise errors.not_found(f"Unknown {kind} '{guid}'.", {field_name: [f"Unknown {kind} GUID '{guid}'."]})
    return _Target(cell.geometry, cell.epsg, f"{kind}_{cell.guid}", cell.guid)


def _check_ready(cov: dict[str, Any], d: date, partial: bool) -> None:
    """Raise unless an order covers the area on ``d`` and its imagery is produced and still stored."""
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


def _orders_with_passes(ready: list[Order], pass_key: str, aoi: BaseGeometry, partial: bool, d: date) -> list[Order]:
    """The ready orders with a download pass left for ``pass_key``; raise if they do not cover the area."""
    with_passes = [o for o in ready if o.passes_used.get(pass_key, 0) < o.api_requests]
    pass_union = shapely.union_all([o.geometry for o in with_passes]) if with_passes else shapely.Polygon()
    if not (covers(pass_union, aoi) or (partial and pass_union.intersects(aoi))):
        raise ApiError(
            400,
            errors.DOMAIN_RULE,
            f"The ApiRequests download passes of the covering order(s) for {d.isoformat()} are used up.",
            {
                "ApiRequests": [
                    f"{o.guid}: {o.api_requests} of {o.api_requests} used" for o in ready if o not in with_passes
                ]
            },
        )
    return with_passes


def raster_spec(
    account: AccountConfig, body: DownloadBody, aoi: BaseGeometry, default_epsg: int | None
) -> tuple[RasterSpec, list[str]]:
    """The GeoTIFF a download yields (and its band names), after checking its options and the account's limits."""
    options = _check_options(body, default_epsg)
    bands = options.bands
    if len(bands) > account.max_total_bands:
        raise ApiError(
            400,
            errors.BAND_LIMIT,
            f"Max band count reached: {len(bands)} bands requested, MaxTotalBands is {account.max_total_bands}.",
            {"Bandnames": [f"At most {account.max_total_bands} bands per request."]},
        )
    area = geo.geodesic_area_km2(aoi)
    if area > account.max_composite_area_km2:
        raise ApiError(
            400,
            errors.AREA_LIMIT,
            f"Max area limit reached: {area:.1f} km2 requested, MaxCompositeAreaKm2 is "
            f"{account.max_composite_area_km2}.",
            {"Wkt": [f"Split the area into parts of at most {account.max_composite_area_km2} km2."]},
        )
    epsg = geo.resolve_epsg(options.epsg, aoi)
    res = options.resolution
    if geo.is_geographic_epsg(epsg):
        step_x = step_y = res / 111_320.0
    else:
        step_x = step_y = float(res)
    minx, miny, maxx, maxy = geo.projected_bounds(aoi, epsg)
    rnd_lo, rnd_hi = (math.ceil, math.floor) if options.contained else (math.floor, math.ceil)
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
        "MODEL": options.model.name,
        "DATE": body.Date.isoformat() if body.Date else "",
        "LEVEL": str(body.Level or 2),
        "HARMONIZE": str(body.Harmonize if body.Harmonize is not None else True).lower(),
    }
    seed = (body.Date.toordinal() if body.Date else 0) % 997
    spec = RasterSpec(width, height, bands, options.dtype, epsg, x0, y1, step_x, step_y, seed=seed, metadata=meta)
    try:
        GeoTiffStream(spec)
    except ValueError as exc:
        raise validation_error({"Resolution": [f"{exc}; request a coarser resolution or fewer bands."]}) from exc
    return spec, bands


@dataclass
class _Options:
    resolution: int
    epsg: int
    dtype: str
    contained: bool
    model: catalogue.TaskingModel
    bands: list[str]


def _check_options(body: DownloadBody, default_epsg: int | None) -> _Options:
    """A download's options, each checked; every invalid one is named in one validation error."""
    errs: dict[str, list[str]] = {}
    res = body.Resolution if body.Resolution is not None else 10
    if res not in ALLOWED_RESOLUTIONS:
        errs["Resolution"] = [f"'Resolution' must be one of {', '.join(map(str, ALLOWED_RESOLUTIONS))}."]
    epsg = body.EpsgProjection if body.EpsgProjection is not None else (default_epsg or geo.AUTO_UTM_EPSG)
    if not geo.is_supported_epsg(epsg):
        errs["EpsgProjection"] = [EPSG_MESSAGE]
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
    assert model is not None
    return _Options(res, epsg, dtype, psm == "contained", model, bands)
