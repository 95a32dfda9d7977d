"""The emulator's domain: accounts, orders and their lifecycle, availability, downloads, persistence.

All methods take the emulated ``now`` explicitly and hold one re-entrant lock, so the app (uvicorn thread)
and the control API (test thread) can both call in.

Lifecycle (durations in ``LifecycleDurations``): an order is created in ``Review`` on accounts without
automatic acceptance (default: automatic acceptance, ``Review`` skipped). It is accepted after ``review`` (or
``Denied`` - an INVENTED status string - when the account auto-denies; the charge is refunded). Then
``Preparing`` for ``preparing``; then ``AwaitingSatelliteProducts`` while no scheduled date has been flown
over yet, ``Processing`` while a flown-over date is still being produced, and ``Completed`` (historical,
every date produced) or ``UpToDate`` (recurring, every date up to now produced). Image date ``d`` is
produced at ``max(d + 1 day + production_delay, accepted + preparing + processing)`` and is downloadable
until the end of the calendar month ``StorageMonths`` months after ``d``'s month (``StorageMonths`` = 1 is
the free window "through the end of the following month"; CONFLICT 15 resolved as "total months beyond the
image month", extra months beyond 1 are billed).
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from . import catalogue, errors, geo, grid
from .config import ATTRIBUTION_PLACEHOLDER, AccountConfig, EmulatorConfig
from .errors import ApiError, validation_error
from .geotiff import GeoTiffStream, RasterSpec
from .schemas import DownloadBody, OrderBody

MIN_BILLABLE_KM2 = 0.5
MIN_BBOX_SIDE_M = 150.0
MIN_BBOX_FILL = 0.05
ALLOWED_RESOLUTIONS = (10, 20, 40, 80, 160, 320, 640, 1280)
DENIED = "Denied"  # INVENTED: the contract gives no status string for a denied order.


# ----------------------------------------------------------------------------- calendar helpers


def month_start(d: date) -> date:
    return d.replace(day=1)


def add_months(d: date, n: int) -> date:
    m = d.month - 1 + n
    return date(d.year + m // 12, m % 12 + 1, 1)


def month_end(d: date) -> date:
    return add_months(d, 1) - timedelta(days=1)


def months_between(a: date, b: date) -> int:
    """Number of calendar months from a's month to b's month inclusive."""
    return (b.year - a.year) * 12 + b.month - a.month + 1


def midnight(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=timezone.utc)


def image_dates(reference: date, frequency: int, start: date, end: date) -> list[date]:
    """Dates d in [start, end] with ``(d - reference).days % frequency == 0``."""
    if end < start:
        return []
    offset = (start - reference).days % frequency
    first = start + timedelta(days=(frequency - offset) % frequency)
    out = []
    d = first
    while d <= end:
        out.append(d)
        d += timedelta(days=frequency)
    return out


def iso_z(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


# ----------------------------------------------------------------------------- records


@dataclass
class Order:
    guid: str
    key: str
    created: datetime
    model: str
    constellations: list[str]
    storage_months: int
    api_requests: int
    image_frequency: int
    reference_date: date
    from_date: date
    to_date: date | None
    mode: str  # "polygon" | "tile"
    wkt: str | None
    tiles: list[str]
    minitiles: list[str]
    area_km2: float
    area_raw_km2: float
    mode_factor: float
    charged: float
    paid_through: date  # first day of the last month paid for
    accepted_at: datetime | None
    review_until: datetime | None
    will_deny: bool = False
    denied: bool = False
    canceled: bool = False
    canceled_at: datetime | None = None
    renewal_stopped: bool = False
    renewal_failed: bool = False
    #: Last day of coverage of a recurring order that stopped renewing (cancelled or unpaid). ``to_date``
    #: stays what was ordered (null): a cancel does not turn a recurring order into a historical one.
    ends: date | None = None
    automatic_order_guid: str | None = None
    deduplicated_tiles: list[str] = field(default_factory=list)
    passes_used: dict[str, int] = field(default_factory=dict)
    _geometry: BaseGeometry | None = field(default=None, repr=False, compare=False)

    @property
    def recurring(self) -> bool:
        return self.to_date is None

    @property
    def geometry(self) -> BaseGeometry:
        if self._geometry is None:
            if self.wkt:
                self._geometry = shapely.union_all(geo.split_aois(shapely.from_wkt(self.wkt)))
            else:
                cells = [grid.parse_guid(g) for g in self.tiles + self.minitiles]
                self._geometry = shapely.union_all([c.geometry for c in cells if c is not None])
        return self._geometry

    def end_date(self) -> date:
        """Last day of coverage paid for so far."""
        if self.to_date is not None:
            return self.to_date
        if self.ends is not None:
            return self.ends
        return month_end(self.paid_through)

    def scheduled_dates(self) -> list[date]:
        if self.canceled or self.denied:
            return []
        return image_dates(self.reference_date, self.image_frequency, self.from_date, self.end_date())

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("_geometry")
        for k, v in list(d.items()):
            if isinstance(v, (date, datetime)):
                d[k] = v.isoformat()
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Order:
        d = dict(d)
        for k in ("created", "accepted_at", "review_until", "canceled_at"):
            if d.get(k):
                d[k] = datetime.fromisoformat(d[k])
        for k in ("reference_date", "from_date", "to_date", "paid_through", "ends"):
            if d.get(k):
                d[k] = date.fromisoformat(d[k])
        return cls(**d)


@dataclass
class Account:
    config: AccountConfig
    euro_credit_amount: float
    credit_amount: float
    spend: dict[str, float] = field(default_factory=dict)  # "YYYY-MM" -> EUR charged

    @classmethod
    def from_config(cls, cfg: AccountConfig) -> Account:
        return cls(AccountConfig(**cfg.to_dict()), cfg.euro_credit_amount, cfg.credit_amount)

    def spent(self, month: date) -> float:
        return self.spend.get(month.strftime("%Y-%m"), 0.0)

    def add_spend(self, month: date, eur: float) -> None:
        k = month.strftime("%Y-%m")
        self.spend[k] = self.spend.get(k, 0.0) + eur


@dataclass
class PlannedDownload:
    """A validated, charged download ready to stream."""

    stream: GeoTiffStream
    filename: str
    upload_url: str | None


# ----------------------------------------------------------------------------- the store


class Store:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.lock = threading.RLock()
        self.accounts: dict[str, Account] = {}
        self.orders: dict[str, Order] = {}
        self.charges: list[dict[str, Any]] = []
        self.restored_clock: datetime | None = None
        self._db: sqlite3.Connection | None = None
        self.reset()
        if config.state_file:
            self._open_db(config.state_file)

    # ------------------------------------------------------------------ admin

    def reset(self) -> None:
        with self.lock:
            self.accounts = {a.key: Account.from_config(a) for a in self.config.accounts}
            self.orders = {}
            self.charges = []
            self.save()

    def add_account(self, cfg: AccountConfig) -> Account:
        with self.lock:
            acct = Account.from_config(cfg)
            self.accounts[cfg.key] = acct
            if not any(a.key == cfg.key for a in self.config.accounts):
                self.config.accounts.append(cfg)
            self.save()
            return acct

    def update_account(self, key: str, **changes: Any) -> Account:
        with self.lock:
            acct = self.accounts[key]
            for name, value in changes.items():
                if name in ("euro_credit_amount", "credit_amount"):
                    setattr(acct, name, float(value))
                elif hasattr(acct.config, name):
                    setattr(acct.config, name, value)
                else:
                    raise AttributeError(f"unknown account field {name!r}")
            self.save()
            return acct

    def account(self, key: str | None) -> Account | None:
        return self.accounts.get(key) if key else None

    # ------------------------------------------------------------------ persistence

    def _open_db(self, path: str) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("CREATE TABLE IF NOT EXISTS state (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
        rows = dict(self._db.execute("SELECT k, v FROM state").fetchall())
        if "orders" in rows:
            self.orders = {o["guid"]: Order.from_json(o) for o in json.loads(rows["orders"])}
        if "accounts" in rows:
            for key, a in json.loads(rows["accounts"]).items():
                cfg = AccountConfig(**a["config"])
                if key not in self.accounts:
                    self.config.accounts.append(cfg)
                self.accounts[key] = Account(cfg, a["euro_credit_amount"], a["credit_amount"], a["spend"])
        if "charges" in rows:
            self.charges = json.loads(rows["charges"])
        if "clock" in rows:
            self.restored_clock = datetime.fromisoformat(json.loads(rows["clock"]))
        self.save()

    def save(self, now: datetime | None = None) -> None:
        if self._db is None:
            return
        with self.lock:
            accounts = {
                k: {
                    "config": a.config.to_dict(),
                    "euro_credit_amount": a.euro_credit_amount,
                    "credit_amount": a.credit_amount,
                    "spend": a.spend,
                }
                for k, a in self.accounts.items()
            }
            items = [
                ("orders", json.dumps([o.to_json() for o in self.orders.values()])),
                ("accounts", json.dumps(accounts)),
                ("charges", json.dumps(self.charges)),
            ]
            if now is not None:
                items.append(("clock", json.dumps(now.isoformat())))
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO state (k, v) VALUES (?, ?)", items)
            self._db.execute("COMMIT")

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # ------------------------------------------------------------------ time-driven changes

    def sync(self, now: datetime) -> None:
        """Apply what happened up to ``now``: denials after review and monthly renewals at 00:00 UTC."""
        changed = False
        with self.lock:
            for order in self.orders.values():
                if order.canceled or order.denied:
                    continue
                if order.will_deny and order.review_until is not None and now >= order.review_until:
                    order.denied = True
                    self._refund(order, order.review_until, "denied")
                    changed = True
                    continue
                while order.recurring and order.ends is None and add_months(order.paid_through, 1) <= now.date():
                    changed = True
                    self._renew(order, add_months(order.paid_through, 1))
            if changed:
                self.save(now)

    def _renew(self, order: Order, month: date) -> None:
        acct = self.accounts[order.key]
        model = catalogue.find_model(order.model)
        assert model is not None
        cost = catalogue.order_month_cost(
            model, order.constellations, order.mode_factor, self._billed_area(order), 1, acct.spent(month)
        ) + catalogue.storage_cost(self._billed_area(order), order.storage_months, 1)
        if acct.euro_credit_amount - cost < -acct.config.euro_credit_limit:
            # Not enough order credits at renewal: coverage stops at the end of the paid month.
            order.renewal_failed = True
            order.ends = month_end(order.paid_through)
            return
        acct.euro_credit_amount -= cost
        acct.add_spend(month, cost)
        order.charged += cost
        order.paid_through = month
        self.charges.append(
            {
                "kind": "renewal",
                "key": order.key,
                "order": order.guid,
                "eur": round(cost, 6),
                "at": iso_z(midnight(month)),
            }
        )

    def _billed_area(self, order: Order) -> float:
        if order.mode == "tile" and order.deduplicated_tiles:
            dedup = set(order.deduplicated_tiles)
            return sum(_cell_area(g) for g in order.tiles + order.minitiles if g not in dedup)
        return order.area_km2

    def _refund(self, order: Order, at: datetime, why: str) -> None:
        acct = self.accounts[order.key]
        acct.euro_credit_amount += order.charged
        acct.add_spend(order.created.date(), -order.charged)
        self.charges.append(
            {
                "kind": "refund",
                "key": order.key,
                "order": order.guid,
                "eur": round(-order.charged, 6),
                "at": iso_z(at),
                "why": why,
            }
        )
        order.charged = 0.0

    # ------------------------------------------------------------------ lifecycle

    def status(self, order: Order, now: datetime) -> str:
        d = self.config.durations
        if order.canceled:
            return "Canceled"
        if order.denied:
            return DENIED
        if order.accepted_at is None or now < order.accepted_at:
            return "Review"
        if now < order.accepted_at + d.preparing:
            return "Preparing"
        dates = [x for x in order.scheduled_dates() if midnight(x) + timedelta(days=1) <= now]
        pending = [x for x in dates if self.produced_at(order, x) > now]
        if pending:
            return "Processing"
        # A recurring order whose renewal was stopped keeps behaving as recurring until its paid month ends.
        stopped = (order.renewal_stopped or order.renewal_failed) and now.date() <= order.end_date()
        if (order.recurring and order.ends is None) or stopped:
            return "UpToDate" if dates else "AwaitingSatelliteProducts"
        all_dates = order.scheduled_dates()
        if all_dates and len(dates) == len(all_dates):
            return "Completed"
        if not all_dates and now.date() > order.end_date():
            return "Completed"
        return "AwaitingSatelliteProducts"

    def produced_at(self, order: Order, d: date) -> datetime:
        dur = self.config.durations
        assert order.accepted_at is not None
        earliest = order.accepted_at + dur.preparing + dur.processing
        return max(midnight(d) + timedelta(days=1) + dur.production_delay, earliest)

    def storage_end(self, order: Order, d: date) -> datetime:
        return midnight(add_months(month_start(d), order.storage_months + 1))

    def date_available(self, order: Order, d: date, now: datetime) -> bool:
        if order.accepted_at is None or now < order.accepted_at or order.denied or order.canceled:
            return False
        if d not in order.scheduled_dates():
            return False
        return self.produced_at(order, d) <= now < self.storage_end(order, d)

    def expired(self, order: Order, now: datetime) -> bool:
        if order.canceled or order.denied:
            stamp = order.canceled_at or order.review_until or order.created
            return now >= midnight(add_months(month_start(stamp.date()), 1))
        last = order.to_date or order.ends
        if last is None:
            return False
        return now >= midnight(add_months(month_start(last), order.storage_months + 1))

    # ------------------------------------------------------------------ order validation and pricing

    def _validate_order(self, body: OrderBody, key: str, now: datetime, create: bool) -> dict[str, Any]:
        errs: dict[str, list[str]] = {}

        def err(fieldname: str, msg: str) -> None:
            errs.setdefault(fieldname, []).append(msg)

        tile_guids = [g for g in (body.TileGuids or [])]
        mini_guids = [g for g in (body.MiniTileGuids or [])]
        modes = sum([body.Wkt is not None, body.GeoJson is not None, bool(tile_guids or mini_guids)])
        if modes != 1:
            err(
                "Wkt",
                f"Specify exactly one area of interest: Wkt, GeoJson, or TileGuids/MiniTileGuids ({modes} given).",
            )
        model = catalogue.find_model(body.Model)
        if not body.Model:
            err("Model", "'Model' must not be empty.")
        elif model is None:
            err("Model", catalogue.unknown_model(body.Model))
        constellations: list[str] = []
        if not body.SatelliteConstellations:
            err("SatelliteConstellations", "'SatelliteConstellations' must not be empty.")
        else:
            for c in body.SatelliteConstellations:
                canon = catalogue.canonical_constellation(c)
                if canon is None:
                    err("SatelliteConstellations", catalogue.unknown_constellation(c))
                elif canon not in constellations:
                    constellations.append(canon)
            if model is not None and not errs.get("SatelliteConstellations"):
                missing = [c for c in model.required if c not in constellations]
                extra = [c for c in constellations if c not in model.required + model.optional]
                if missing:
                    err("SatelliteConstellations", f"Model {model.name} requires {', '.join(missing)}.")
                if extra:
                    err("SatelliteConstellations", f"Model {model.name} does not support {', '.join(extra)}.")
        if body.StorageMonths is None or body.StorageMonths < 1:
            err("StorageMonths", "'StorageMonths' must be greater than or equal to 1.")
        if body.ApiRequests is None or body.ApiRequests < 1:
            err("ApiRequests", "'ApiRequests' must be greater than or equal to 1.")
        if body.ImageFrequency is None or not 1 <= body.ImageFrequency <= 7:
            err("ImageFrequency", "'ImageFrequency' must be between 1 and 7.")
        if body.From is None:
            err("From", "'From' must not be empty.")
        elif body.From.day != 1:
            err("From", "'From' must be the first day of a month.")
        if body.From is not None and body.To is not None and body.To < body.From:
            err("To", "'To' must be null (recurring) or on or after 'From'.")

        aois: list[BaseGeometry] = []
        cells: list[grid.Cell] = []
        if modes == 1 and (body.Wkt is not None or body.GeoJson is not None):
            try:
                aois = geo.split_aois(geo.parse_geometry(body.Wkt, body.GeoJson))
            except geo.GeometryError as exc:
                err("Wkt" if body.Wkt is not None else "GeoJson", str(exc))
            fieldname = "Wkt" if body.Wkt is not None else "GeoJson"
            for i, aoi in enumerate(aois):
                w, h = geo.bbox_sides_m(aoi)
                if w <= MIN_BBOX_SIDE_M or h <= MIN_BBOX_SIDE_M:
                    err(fieldname, f"AOI {i}: each side of its bounding box must exceed {MIN_BBOX_SIDE_M:.0f} m.")
                bbox_area = geo.geodesic_area_km2(shapely.box(*aoi.bounds))
                if bbox_area > 0 and geo.geodesic_area_km2(aoi) < MIN_BBOX_FILL * bbox_area:
                    err(fieldname, f"AOI {i}: area must be at least 5% of its bounding box.")
        elif modes == 1:
            for fieldname, guids, mini in (("TileGuids", tile_guids, False), ("MiniTileGuids", mini_guids, True)):
                for g in guids:
                    cell = grid.parse_guid(g)
                    if cell is None or cell.is_mini != mini:
                        err(fieldname, f"Unknown {'minitile' if mini else 'tile'} GUID '{g}'.")
                    else:
                        cells.append(cell)
        if errs:
            raise validation_error(errs)
        assert model is not None
        assert body.From is not None
        assert body.StorageMonths is not None
        assert body.ApiRequests is not None
        assert body.ImageFrequency is not None

        if aois:
            raw = [geo.geodesic_area_km2(a) for a in aois]
            area_raw = sum(raw)
            area = sum(max(MIN_BILLABLE_KM2, a) for a in raw)
            factor = catalogue.MODE_FACTOR["polygon"]
            aoi_wkt = geo.to_wkt(shapely.GeometryCollection(aois))
            mode = "polygon"
        else:
            seen: set[str] = set()
            cells = [c for c in cells if not (c.guid in seen or seen.add(c.guid))]  # type: ignore[func-returns-value]
            tile_area = sum(_cell_area(c.guid) for c in cells if not c.is_mini)
            mini_area = sum(_cell_area(c.guid) for c in cells if c.is_mini)
            area_raw = area = tile_area + mini_area
            # One blended factor so that the tile (20 %) and minitile (50 %) parts are priced separately.
            factor = (
                (tile_area * catalogue.MODE_FACTOR["tile"] + mini_area * catalogue.MODE_FACTOR["minitile"]) / area
                if area
                else 1.0
            )
            aoi_wkt = geo.to_wkt(shapely.GeometryCollection([c.geometry for c in cells]))
            mode = "tile"

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
        billed = area - sum(_cell_area(g) for g in dedup)
        acct = self.accounts[key]
        spent = float(body.SimulatedEuroUsage) if body.SimulatedEuroUsage is not None else acct.spent(today)
        cur_order = catalogue.order_month_cost(model, constellations, factor, billed, months_now, spent)
        cur_storage = catalogue.storage_cost(billed, body.StorageMonths, months_now)
        next_order = catalogue.order_month_cost(model, constellations, factor, billed, 1, 0.0) if recurring else 0.0
        next_storage = catalogue.storage_cost(billed, body.StorageMonths, 1) if recurring else 0.0
        return {
            "model": model,
            "constellations": constellations,
            "aois_wkt": aoi_wkt,
            "wkt": aoi_wkt if mode == "polygon" else None,
            "mode": mode,
            "factor": factor,
            "tiles": [c.guid for c in cells if not c.is_mini],
            "minitiles": [c.guid for c in cells if c.is_mini],
            "area": area,
            "area_raw": area_raw,
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
            # The cut-off is before 00:00 UTC on the 1st of next month (CONFLICT 11: docs-new rule), so the
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
            # CONFLICT 7: the 2025 client reads these two objects; emitted beside the docs shape.
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
            "OrderingProcessStatus": self.status(order, now),
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
                if not get_expired and self.expired(o, now):
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
        """Cancel semantics (contract section 8), see docs/emulator.md."""
        with self.lock:
            if not guid:
                raise validation_error({"taskOrderGuid": ["'taskOrderGuid' is required."]})
            o = self.orders.get(guid.lower())
            if o is None or o.key != key:
                raise errors.not_found("Task order not found.", {"taskOrderGuid": [f"Unknown task order '{guid}'."]})
            status = self.status(o, now)
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

    # ------------------------------------------------------------------ availability

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
                    if d >= start and (until is None or d <= until) and self.date_available(o, d, now)
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
        ready = [o for o in sched if self.date_available(o, d, now)]
        ready_union = shapely.union_all([o.geometry for o in ready]) if ready else shapely.Polygon()
        stored = [o for o in sched if now < self.storage_end(o, d)]
        produced = [o for o in sched if o.accepted_at is not None and self.produced_at(o, d) <= now]
        return {
            "orders": orders,
            "scheduled": sched,
            "ready": ready,
            "covers_any": _covers(any_order, aoi),
            "covers_sched": _covers(sched_union, aoi),
            "touch_sched": sched_union.intersects(aoi) and sched_union.intersection(aoi).area > 0,
            "covers_ready": _covers(ready_union, aoi),
            "touch_ready": ready_union.intersects(aoi) and ready_union.intersection(aoi).area > 0,
            "stored": bool(stored),
            "all_produced": bool(sched) and len(produced) == len(sched),
        }

    def composite_available(self, key: str, body: DownloadBody, now: datetime) -> dict[str, bool]:
        with self.lock:
            aoi = _download_geometry(body)
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
            aoi = _download_geometry(body)
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
                aoi = _download_geometry(body)
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
            if not (_covers(pass_union, aoi) or (partial and pass_union.intersects(aoi))):
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

    def account_info(self, key: str, now: datetime) -> dict[str, Any]:
        with self.lock:
            acct = self.accounts[key]
            c = acct.config
            next_costs = 0.0
            nxt = add_months(month_start(now.date()), 1)
            for o in self.orders.values():
                if o.key == key and o.recurring and o.ends is None and not (o.canceled or o.denied):
                    model = catalogue.find_model(o.model)
                    assert model is not None
                    area = self._billed_area(o)
                    next_costs += catalogue.order_month_cost(model, o.constellations, o.mode_factor, area, 1, 0.0)
                    next_costs += catalogue.storage_cost(area, o.storage_months, 1)
            del nxt
            return {
                # /api/apikey/info (2024) fields
                "Key": c.key,
                "CreditAmount": round(acct.credit_amount, 4),
                "EuroCreditAmount": round(acct.euro_credit_amount, 4),
                "CreditLimit": c.credit_limit,
                "EuroCreditLimit": c.euro_credit_limit,
                "ContactInfo": c.contact_info,
                "Email": c.email,
                "MaxConcurrentConnections": c.max_concurrent_connections,
                "MaxCompositeAreaKm2": c.max_composite_area_km2,
                "MaxTotalBands": c.max_total_bands,
                "CurrentMonthCosts": round(acct.spent(now.date()), 4),
                "NextMonthCosts": round(next_costs, 4),
                # /api/account/info (2025) fields
                "TenantId": c.tenant_id,
                "EuroOverdraftLimit": c.euro_credit_limit,
                "EuroBalanceCap": c.euro_balance_cap,
            }


_EPSG_MSG = "'EpsgProjection' must be a valid EPSG code (e.g. 4326, 3857, 32632, 25832, 3035) or 47000 (auto-UTM)."


def processing_units(area_km2: float) -> int:
    return max(1, math.ceil(area_km2 / catalogue.KM2_PER_PROCESSING_UNIT))


def _cell_area(guid: str) -> float:
    cell = grid.parse_guid(guid)
    return geo.geodesic_area_km2(cell.geometry) if cell else 0.0


def _covers(union: BaseGeometry, aoi: BaseGeometry) -> bool:
    if union.is_empty:
        return False
    rest = aoi.difference(union)
    return bool(rest.is_empty or rest.area <= 1e-9 * max(aoi.area, 1e-12) + 1e-14)


def _download_geometry(body: DownloadBody) -> BaseGeometry:
    if (body.Wkt is None) == (body.GeoJson is None):
        raise validation_error({"Wkt": ["Specify exactly one of Wkt or GeoJson."]})
    try:
        return geo.download_aoi(geo.parse_geometry(body.Wkt, body.GeoJson))
    except geo.GeometryError as exc:
        raise validation_error({"Wkt" if body.Wkt is not None else "GeoJson": [str(exc)]}) from exc
