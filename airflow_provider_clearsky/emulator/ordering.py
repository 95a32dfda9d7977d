"""Ordering: validating and pricing an order, estimates, creating, listing, details and cancelling."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from . import catalogue, errors, geo, grid, lifecycle
from .config import ATTRIBUTION_PLACEHOLDER
from .dates import image_dates, iso_z, month_end, month_start, months_between
from .errors import ApiError, validation_error
from .lifecycle import DENIED
from .records import Order, cell_area
from .schemas import OrderBody
from .store import RecordStore

MIN_BILLABLE_KM2 = 0.5
MIN_BBOX_SIDE_M = 150.0
MIN_BBOX_FILL = 0.05


class OrderingStore(RecordStore):
    """The order endpoints' operations on the records."""

    def _validate_order(self, body: OrderBody, key: str, now: datetime, create: bool) -> dict[str, Any]:
        errs: Errors = {}
        tile_guids = [g for g in (body.TileGuids or [])]
        mini_guids = [g for g in (body.MiniTileGuids or [])]
        modes = sum([body.Wkt is not None, body.GeoJson is not None, bool(tile_guids or mini_guids)])
        if modes != 1:
            _add(
                errs,
                "Wkt",
                f"Specify exactly one area of interest: Wkt, GeoJson, or TileGuids/MiniTileGuids ({modes} given).",
            )
        model, constellations = _check_model(body, errs)
        _check_terms(body, errs)
        aois: list[BaseGeometry] = []
        cells: list[grid.Cell] = []
        if modes == 1 and (body.Wkt is not None or body.GeoJson is not None):
            aois = _check_aois(body, errs)
        elif modes == 1:
            cells = _check_cells(tile_guids, mini_guids, errs)
        if errs:
            raise validation_error(errs)
        assert model is not None
        area = _measure_area(aois, cells)
        return self._price_order(body, key, now, create, model, constellations, area)

    def _price_order(
        self,
        body: OrderBody,
        key: str,
        now: datetime,
        create: bool,
        model: catalogue.TaskingModel,
        constellations: list[str],
        aoi: _MeasuredArea,
    ) -> dict[str, Any]:
        assert body.From is not None
        assert body.StorageMonths is not None
        assert body.ApiRequests is not None
        assert body.ImageFrequency is not None
        cells, area, factor, mode = aoi.cells, aoi.area, aoi.factor, aoi.mode
        today = now.date()
        recurring = body.To is None
        if recurring:
            paid_through = max(month_start(today), month_start(body.From))
            end = month_end(paid_through)
        else:
            assert body.To is not None
            paid_through = month_start(body.To)
            end = body.To
        months_now = months_between(body.From, paid_through)
        reference = body.ReferenceDate or body.From
        dedup: list[str] = []
        if create and mode == "tile" and body.TileDeduplication:
            dedup = self._dedup(key, model.name, constellations, cells)
        billed = area - sum(cell_area(g) for g in dedup)
        acct = self.accounts[key]
        spent = float(body.SimulatedEuroUsage) if body.SimulatedEuroUsage is not None else acct.spent(today)
        cur_order = catalogue.order_month_cost(model, constellations, factor, billed, months_now, spent)
        cur_storage = catalogue.storage_cost(billed, body.StorageMonths, months_now)
        next_order = catalogue.order_month_cost(model, constellations, factor, billed, 1, 0.0) if recurring else 0.0
        next_storage = catalogue.storage_cost(billed, body.StorageMonths, 1) if recurring else 0.0
        return {
            "model": model,
            "constellations": constellations,
            "aois_wkt": aoi.wkt,
            "wkt": aoi.wkt if mode == "polygon" else None,
            "mode": mode,
            "factor": factor,
            "tiles": [c.guid for c in cells if not c.is_mini],
            "minitiles": [c.guid for c in cells if c.is_mini],
            "area": area,
            "area_raw": aoi.area_raw,
            "paid_through": paid_through,
            "reference": reference,
            "dates": image_dates(reference, body.ImageFrequency, body.From, end),
            "cur_order": cur_order,
            "cur_storage": cur_storage,
            "next_order": next_order,
            "next_storage": next_storage,
            "dedup": dedup,
        }

    def _dedup(self, key: str, model: str, constellations: list[str], cells: list[grid.Cell]) -> list[str]:
        """Cells already in an earlier live tile/minitile order with the same model and constellations."""
        previous: set[str] = set()
        for o in self.orders.values():
            if (
                o.key == key
                and o.mode == "tile"
                and not (o.canceled or o.denied)
                and o.model == model
                and sorted(o.constellations) == sorted(constellations)
            ):
                previous.update(o.tiles)
                previous.update(o.minitiles)
        return [c.guid for c in cells if c.guid in previous]

    def estimate(self, key: str, body: OrderBody, now: datetime) -> dict[str, Any]:
        with self.lock:
            v = self._validate_order(body, key, now, create=False)
        return self._estimate_payload(body, v, now)

    def _estimate_payload(self, body: OrderBody, v: dict[str, Any], now: datetime) -> dict[str, Any]:
        cur = v["cur_order"] + v["cur_storage"]
        nxt = v["next_order"] + v["next_storage"]
        return {
            "StorageMonths": body.StorageMonths,
            "ApiRequests": body.ApiRequests,
            "SatelliteConstellations": v["constellations"],
            "Model": v["model"].name,
            # The cut-off is before 00:00 UTC on the 1st of next month (docs/api.md#cancellation), so the
            # last day on which a cancellation is accepted is the last day of the current month.
            "CancellationDate": month_end(now.date()).isoformat(),
            "AreaKm2": round(v["area"], 4),
            "AreaKm2BeforeMinimum1Km2PerAoi": round(v["area_raw"], 4),
            "CurrentMonthCost": round(cur, 2),
            "NextMonthCost": round(nxt, 2),
            "Costs": {
                "CurrencyCode": "EUR",
                "CurrentMonthOrderCostEstimate": round(v["cur_order"], 2),
                "CurrentMonthStorageCosts": round(v["cur_storage"], 2),
                "NextMonthOrderCostEstimate": round(v["next_order"], 2),
                "NextMonthStorageCosts": round(v["next_storage"], 2),
            },
            # docs/api.md#order-estimate-and-create: the 2025 client reads these; emitted beside the docs shape.
            "CurrentMonthCosts": {"TotalCost": round(cur, 2), "CurrencyCode": "EUR"},
            "RecurringCostsEstimate": {"TotalCost": round(nxt, 2), "CurrencyCode": "EUR"},
            "Tiles": v["tiles"],
            "MiniTiles": v["minitiles"],
            "AreasOfInterestWkt": v["aois_wkt"],
            "ImageDates": [d.isoformat() for d in v["dates"]],
            "Attribution": ATTRIBUTION_PLACEHOLDER,
        }

    def create(self, key: str, body: OrderBody, now: datetime, automatic_order_guid: str | None) -> dict[str, Any]:
        with self.lock:
            v = self._validate_order(body, key, now, create=True)
            acct = self.accounts[key]
            cost = v["cur_order"] + v["cur_storage"]
            if acct.euro_credit_amount - cost < -acct.config.euro_credit_limit:
                raise ApiError(
                    400,
                    errors.INSUFFICIENT_CREDITS,
                    f"Insufficient order credits: the order costs EUR {cost:.2f}, the balance is "
                    f"EUR {acct.euro_credit_amount:.2f} (limit {acct.config.euro_credit_limit}).",
                )
            assert body.From is not None
            auto = acct.config.auto_accept and not acct.config.auto_deny
            review_until = None if auto else now + self.config.durations.review
            order = Order(
                guid=str(uuid.uuid4()),
                key=key,
                created=now,
                model=v["model"].name,
                constellations=v["constellations"],
                storage_months=int(body.StorageMonths or 1),
                api_requests=int(body.ApiRequests or 1),
                image_frequency=int(body.ImageFrequency or 1),
                reference_date=v["reference"],
                from_date=body.From,
                to_date=body.To,
                mode=v["mode"],
                wkt=v["wkt"],
                tiles=v["tiles"],
                minitiles=v["minitiles"],
                area_km2=v["area"],
                area_raw_km2=v["area_raw"],
                mode_factor=v["factor"],
                charged=cost,
                paid_through=v["paid_through"],
                accepted_at=now if auto else review_until,
                review_until=review_until,
                will_deny=acct.config.auto_deny,
                automatic_order_guid=automatic_order_guid,
                deduplicated_tiles=v["dedup"],
            )
            acct.euro_credit_amount -= cost
            acct.add_spend(now.date(), cost)
            self.orders[order.guid] = order
            self.charges.append(
                {"kind": "order", "key": key, "order": order.guid, "eur": round(cost, 6), "at": iso_z(now)}
            )
            self.save(now)
            return self.order_payload(order, now, details=True)

    def order_payload(self, order: Order, now: datetime, details: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "TaskOrderGuid": order.guid,
            "BillingCycle": "Monthly",
            "OrderingProcessStatus": lifecycle.status(order, now, self.config.durations),
            "StorageMonths": order.storage_months,
            "ApiRequests": order.api_requests,
            "ImageFrequency": order.image_frequency,
            "TaskOrderAreaKm2": round(order.area_km2, 4),
            "Model": order.model,
            "ReferenceDate": order.reference_date.isoformat(),
            "From": order.from_date.isoformat(),
            "To": order.to_date.isoformat() if order.to_date else None,
            "SatelliteConstellations": order.constellations,
            # Tiles/MiniTiles as GUID strings in list and details (the 2024 model's shape).
            "Tiles": list(order.tiles) if order.mode == "tile" else None,
            "MiniTiles": list(order.minitiles) if order.mode == "tile" else None,
            "Wkt": geo.echo_wkt(order.wkt, self.config.order_geometry_echo) if order.wkt else None,
            "CreatedDate": iso_z(order.created),
            # INVENTED (docs/emulator.md): whether an order stopped renewing. No provider logic reads it.
            "RenewalStopped": order.renewal_stopped or order.renewal_failed,
        }
        if details:
            out["ImageDates"] = [d.isoformat() for d in order.scheduled_dates()]
            out["Attribution"] = ATTRIBUTION_PLACEHOLDER
        return out

    def list_orders(self, key: str, now: datetime, recurring_only: bool, get_expired: bool) -> list[dict[str, Any]]:
        with self.lock:
            out = []
            for o in self.orders.values():
                if o.key != key:
                    continue
                if recurring_only and not (o.recurring and o.ends is None):  # still renewing (INVENTED reading)
                    continue
                if not get_expired and lifecycle.expired(o, now):
                    continue
                out.append(self.order_payload(o, now))
            return out

    def details(self, key: str, guids: Iterable[str], now: datetime) -> list[dict[str, Any]]:
        with self.lock:
            out = []
            missing = []
            for g in guids:
                o = self.orders.get(str(g).lower())
                if o is None or o.key != key:
                    missing.append(g)
                else:
                    out.append(self.order_payload(o, now, details=True))
            if missing:
                raise errors.not_found(
                    "Task order not found.", {"Guids": [f"Unknown task order '{g}'." for g in missing]}
                )
            return out

    def cancel(self, key: str, guid: str | None, now: datetime) -> dict[str, Any]:
        """Cancel semantics (docs/api.md#cancellation), see docs/emulator.md."""
        with self.lock:
            if not guid:
                raise validation_error({"taskOrderGuid": ["'taskOrderGuid' is required."]})
            o = self.orders.get(guid.lower())
            if o is None or o.key != key:
                raise errors.not_found("Task order not found.", {"taskOrderGuid": [f"Unknown task order '{guid}'."]})
            status = lifecycle.status(o, now, self.config.durations)
            if status in ("Canceled", DENIED):
                return self.order_payload(o, now, details=True)
            if status == "Review":
                o.canceled = True
                o.canceled_at = now
                self._refund(o, now, "canceled in review")
            elif o.recurring:
                # After acceptance: stop the next renewal only (docs); the month(s) already paid stay covered.
                # The order stays what was ordered (To null); a repeated cancel is accepted again (INVENTED).
                o.renewal_stopped = True
                o.ends = month_end(o.paid_through)
            else:
                raise ApiError(
                    400,
                    errors.DOMAIN_RULE,
                    f"Task order {o.guid} has been accepted ({status}); historical orders cannot be "
                    "cancelled after acceptance.",
                    {
                        "taskOrderGuid": [
                            "Only orders in Review, or the next renewal of a recurring order, can be cancelled."
                        ]
                    },
                )
            self.save(now)
            return self.order_payload(o, now, details=True)


Errors = dict[str, list[str]]


def _add(errs: Errors, fieldname: str, msg: str) -> None:
    errs.setdefault(fieldname, []).append(msg)


@dataclass
class _MeasuredArea:
    """An order's area of interest as billed: polygons, or tiles and minitiles."""

    mode: str  # "polygon" | "tile"
    wkt: str
    cells: list[grid.Cell]
    area: float
    area_raw: float
    factor: float


def _check_model(body: OrderBody, errs: Errors) -> tuple[catalogue.TaskingModel | None, list[str]]:
    """The model and the canonical constellations (each once), or errors about them."""
    model = catalogue.find_model(body.Model)
    if not body.Model:
        _add(errs, "Model", "'Model' must not be empty.")
    elif model is None:
        _add(errs, "Model", catalogue.unknown_model(body.Model))
    constellations: list[str] = []
    if not body.SatelliteConstellations:
        _add(errs, "SatelliteConstellations", "'SatelliteConstellations' must not be empty.")
        return model, constellations
    for c in body.SatelliteConstellations:
        canon = catalogue.canonical_constellation(c)
        if canon is None:
            _add(errs, "SatelliteConstellations", catalogue.unknown_constellation(c))
        elif canon not in constellations:
            constellations.append(canon)
    if model is not None and not errs.get("SatelliteConstellations"):
        missing = [c for c in model.required if c not in constellations]
        extra = [c for c in constellations if c not in model.required + model.optional]
        if missing:
            _add(errs, "SatelliteConstellations", f"Model {model.name} requires {', '.join(missing)}.")
        if extra:
            _add(errs, "SatelliteConstellations", f"Model {model.name} does not support {', '.join(extra)}.")
    return model, constellations


def _check_terms(body: OrderBody, errs: Errors) -> None:
    if body.StorageMonths is None or body.StorageMonths < 1:
        _add(errs, "StorageMonths", "'StorageMonths' must be greater than or equal to 1.")
    if body.ApiRequests is None or body.ApiRequests < 1:
        _add(errs, "ApiRequests", "'ApiRequests' must be greater than or equal to 1.")
    if body.ImageFrequency is None or not 1 <= body.ImageFrequency <= 7:
        _add(errs, "ImageFrequency", "'ImageFrequency' must be between 1 and 7.")
    if body.From is None:
        _add(errs, "From", "'From' must not be empty.")
    elif body.From.day != 1:
        _add(errs, "From", "'From' must be the first day of a month.")
    if body.From is not None and body.To is not None and body.To < body.From:
        _add(errs, "To", "'To' must be null (recurring) or on or after 'From'.")


def _check_aois(body: OrderBody, errs: Errors) -> list[BaseGeometry]:
    """The polygons of a Wkt or GeoJson order, each checked against the size rules."""
    aois: list[BaseGeometry] = []
    fieldname = "Wkt" if body.Wkt is not None else "GeoJson"
    try:
        aois = geo.split_aois(geo.parse_geometry(body.Wkt, body.GeoJson))
    except geo.GeometryError as exc:
        _add(errs, fieldname, str(exc))
    for i, aoi in enumerate(aois):
        w, h = geo.bbox_sides_m(aoi)
        if w <= MIN_BBOX_SIDE_M or h <= MIN_BBOX_SIDE_M:
            _add(errs, fieldname, f"AOI {i}: each side of its bounding box must exceed {MIN_BBOX_SIDE_M:.0f} m.")
        bbox_area = geo.geodesic_area_km2(shapely.box(*aoi.bounds))
        if bbox_area > 0 and geo.geodesic_area_km2(aoi) < MIN_BBOX_FILL * bbox_area:
            _add(errs, fieldname, f"AOI {i}: area must be at least 5% of its bounding box.")
    return aois


def _check_cells(tile_guids: list[str], mini_guids: list[str], errs: Errors) -> list[grid.Cell]:
    cells: list[grid.Cell] = []
    for fieldname, guids, mini in (("TileGuids", tile_guids, False), ("MiniTileGuids", mini_guids, True)):
        for g in guids:
            cell = grid.parse_guid(g)
            if cell is None or cell.is_mini != mini:
                _add(errs, fieldname, f"Unknown {'minitile' if mini else 'tile'} GUID '{g}'.")
            else:
                cells.append(cell)
    return cells


def _measure_area(aois: list[BaseGeometry], cells: list[grid.Cell]) -> _MeasuredArea:
    if aois:
        raw = [geo.geodesic_area_km2(a) for a in aois]
        area = sum(max(MIN_BILLABLE_KM2, a) for a in raw)
        wkt = geo.to_wkt(shapely.GeometryCollection(aois))
        return _MeasuredArea("polygon", wkt, cells, area, sum(raw), catalogue.MODE_FACTOR["polygon"])
    seen: set[str] = set()
    cells = [c for c in cells if not (c.guid in seen or seen.add(c.guid))]  # type: ignore[func-returns-value]
    tile_area = sum(cell_area(c.guid) for c in cells if not c.is_mini)
    mini_area = sum(cell_area(c.guid) for c in cells if c.is_mini)
    area = tile_area + mini_area
    # One blended factor so that the tile (20 %) and minitile (50 %) parts are priced separately.
    factor = (
        (tile_area * catalogue.MODE_FACTOR["tile"] + mini_area * catalogue.MODE_FACTOR["minitile"]) / area
        if area
        else 1.0
    )
    wkt = geo.to_wkt(shapely.GeometryCollection([c.geometry for c in cells]))
    return _MeasuredArea("tile", wkt, cells, area, area, factor)
