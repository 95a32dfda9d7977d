"""What the ordering operators share: order fingerprints, adoption rules, area and summaries, cut-offs.

Plain functions with no Airflow imports, so they are unit-tested on their own. shapely is imported on
first use only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_clearsky.exceptions import AmbiguousOrderError
from airflow_provider_clearsky.models.enums import is_failed_status
from airflow_provider_clearsky.utils.coercion import as_bool, as_cost, as_guid_list, as_int, is_blank_text, utc

if TYPE_CHECKING:
    from pendulum import DateTime
    from pydantic import BaseModel
    from shapely.geometry.base import BaseGeometry

    from airflow_provider_clearsky.models import OrderEstimate, OrderRequest, TaskOrder

#: Mean radius of the authalic (equal-area) sphere of WGS84, in metres.
AUTHALIC_RADIUS_M = 6_371_007.2
#: A response field whose name contains one of these is an attribution/licence/provenance notice.
NOTICE_MARKERS = ("attribution", "licen", "provenance", "notice")


# ----------------------------------------------------------------------------- notices


def notices(model: BaseModel | Mapping[str, Any] | None) -> dict[str, Any]:
    """Attribution, licence, provenance or notice fields of a response, unchanged (contract section 12)."""
    if model is None:
        return {}
    extra = model if isinstance(model, Mapping) else (model.model_extra or {})
    return {key: value for key, value in extra.items() if any(marker in key.lower() for marker in NOTICE_MARKERS)}


# ----------------------------------------------------------------------------- fingerprint


def _canonical(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Return the payload with its unordered lists (constellations, GUIDs) sorted and case-folded."""
    canonical: dict[str, Any] = {}
    for key, value in payload.items():
        if key in ("SatelliteConstellations", "TileGuids", "MiniTileGuids") and isinstance(value, list):
            value = sorted(str(item).lower() for item in value)
        elif key == "Model" and isinstance(value, str):
            value = value.lower()
        canonical[key] = value
    return canonical


def order_fingerprint(create_payload: Mapping[str, Any]) -> str:
    """Return a stable hash of every setting that defines an order: the create body, key order and list order aside.

    Two bodies that order the same thing (same AOI text, GUIDs in another order, constellations in another
    order) have the same fingerprint; any other difference (a date, the frequency, storage, API requests,
    tile deduplication, one vertex) changes it.
    """
    text = json.dumps(_canonical(create_payload), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@dataclass
class AttemptRecord:
    """What a try writes before it sends create, so a later try of the same task instance can look.

    ``known`` holds the orders with the same settings that existed before the create was sent: anything
    matching that is not in it was created by this task instance (or, the documented limit, by someone
    else ordering the identical thing in the same window).
    """

    fingerprint: str
    since: str  # ISO-8601 UTC, the worker's clock when the first try was about to send create
    known: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "since": self.since, "known": list(self.known)}

    @classmethod
    def from_json(cls, value: Any) -> AttemptRecord | None:
        if not isinstance(value, Mapping) or not isinstance(value.get("fingerprint"), str):
            return None
        known = value.get("known") or []
        return cls(
            fingerprint=value["fingerprint"],
            since=str(value.get("since") or ""),
            known=[str(guid).lower() for guid in known] if isinstance(known, list) else [],
        )

    @property
    def since_time(self) -> dt.datetime | None:
        try:
            return utc(dt.datetime.fromisoformat(self.since.replace("Z", "+00:00")))
        except ValueError:
            return None


# ----------------------------------------------------------------------------- adoption


def _same_text(a: str | None, b: str | None) -> bool:
    return (a or "").strip().lower() == (b or "").strip().lower()


def _same_set(a: Iterable[str] | None, b: Iterable[str] | None) -> bool:
    return sorted(x.strip().lower() for x in a or []) == sorted(x.strip().lower() for x in b or [])


def request_geometry(request: OrderRequest) -> BaseGeometry | None:
    """Return the polygon-mode AOI of a request as a shapely geometry (``None`` in tile mode)."""
    from airflow_provider_clearsky.models.geometry import parse_aoi

    if request.wkt is not None:
        return parse_aoi(request.wkt)
    if request.geo_json is not None:
        return parse_aoi(request.geo_json)
    return None


def _area_mismatch(order: TaskOrder, request: OrderRequest, geometry: BaseGeometry | None) -> str | None:
    """Why the order's echoed area is not the requested one, compared by overlap (``utils.area``)."""
    import shapely

    from airflow_provider_clearsky.utils.area import areas_match

    mine = geometry if geometry is not None else request_geometry(request)
    if mine is None or not order.wkt:
        return None
    try:
        same = areas_match(shapely.to_wkt(mine), order.wkt)
    except ValueError as error:
        raise AmbiguousOrderError(
            f"order {order.guid} matches this task's settings but its area cannot be read ({error}); "
            "nothing was ordered, because it may be this task's order. Look at it in the dashboard."
        ) from None
    return None if same else "Wkt is another area"


def order_mismatches(order: TaskOrder, request: OrderRequest, geometry: BaseGeometry | None = None) -> list[str]:
    """Why ``order`` is not the order ``request`` would create (empty: it is).

    Compared: Model, SatelliteConstellations, From, To, ImageFrequency, ReferenceDate, StorageMonths,
    ApiRequests, and the area: the Tiles/MiniTiles sets, or the Wkt by overlap (the service may echo each
    polygon's bounding box or a normalised geometry, see :func:`~airflow_provider_clearsky.utils.area.areas_match`).
    A field the API did not report is not held against the order, except Model and From, which every order
    reports. Raises :class:`AmbiguousOrderError` when an order otherwise identical echoes an unreadable area.
    """
    reasons: list[str] = []
    if not _same_text(order.model, request.model):
        reasons.append(f"Model {order.model!r} != {request.model!r}")
    if order.date_from != request.date_from:
        reasons.append(f"From {order.date_from} != {request.date_from}")
    if "date_to" in order.model_fields_set:
        if order.date_to != request.date_to:
            reasons.append(f"To {order.date_to} != {request.date_to}")
    elif request.date_to is not None:
        reasons.append(f"To missing != {request.date_to}")
    if order.satellite_constellations is not None and not _same_set(
        order.satellite_constellations, request.satellite_constellations
    ):
        reasons.append(
            f"SatelliteConstellations {order.satellite_constellations} != {request.satellite_constellations}"
        )
    for name, mine, theirs in (
        ("ImageFrequency", request.image_frequency, order.image_frequency),
        ("ReferenceDate", request.reference_date, order.reference_date),
        ("StorageMonths", request.storage_months, order.storage_months),
        ("ApiRequests", request.api_requests, order.api_requests),
    ):
        if theirs is not None and theirs != mine:
            reasons.append(f"{name} {theirs} != {mine}")
    if request.is_grid_order:
        if order.wkt and not order.tiles and not order.mini_tiles:
            reasons.append("the order is a polygon order, the request a tile order")
        else:
            if order.tiles is not None and not _same_set(order.tiles, request.tile_guids):
                reasons.append("Tiles differ")
            if order.mini_tiles is not None and not _same_set(order.mini_tiles, request.mini_tile_guids):
                reasons.append("MiniTiles differ")
    else:
        if order.tiles or order.mini_tiles:
            reasons.append("the order is a tile order, the request a polygon order")
        elif not reasons:  # the area is compared last, and only for an order otherwise identical
            area = _area_mismatch(order, request, geometry)
            if area:
                reasons.append(area)
    return reasons


def adoptable_orders(
    orders: Iterable[TaskOrder],
    request: OrderRequest,
    *,
    known: Iterable[str] | None,
    since: dt.datetime | None,
    clock_skew: dt.timedelta,
) -> list[TaskOrder]:
    """Orders this task instance may have created: same settings, not failed, and new.

    "New" means not in ``known`` (the matching orders listed before the first create was sent) when that
    list exists: exact, and immune to clock differences between worker and API. Without it (no record from
    an earlier try), an order is new when its ``CreatedDate`` is at or after ``since`` minus ``clock_skew``
    (an order that does not report ``CreatedDate`` is then not adopted). Oldest first.
    """
    geometry = request_geometry(request)
    known_set = {guid.lower() for guid in known} if known is not None else None
    found = []
    for order in orders:
        if order.is_failed or order_mismatches(order, request, geometry):
            continue
        if known_set is not None:
            if order.guid.lower() in known_set:
                continue
        elif since is None or order.created_date is None or utc(order.created_date) < utc(since) - clock_skew:
            continue
        found.append(order)
    epoch = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    return sorted(found, key=lambda order: utc(order.created_date) if order.created_date else epoch)


# ----------------------------------------------------------------------------- area and summaries


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


def requested_area_km2(request: OrderRequest) -> float | None:
    """Return the AOI's own area (each polygon counted as its own AOI), or ``None`` for tile orders."""
    from airflow_provider_clearsky.models.geometry import polygonal_parts

    geometry = request_geometry(request)
    if geometry is None:
        return None
    return sum(equal_area_km2(part) for part in polygonal_parts(geometry))


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def estimate_summary(request: OrderRequest, estimate: OrderEstimate) -> dict[str, Any]:
    """Return the small JSON an estimate returns (and the create operator keeps in its order summary)."""
    requested = requested_area_km2(request)
    billed = estimate.area_km2
    ratio = round(billed / requested, 3) if billed is not None and requested else None
    summary: dict[str, Any] = {
        "current_month_cost": _round(estimate.current_month_total, 2),
        "next_month_cost": _round(estimate.next_month_total, 2) if request.is_recurring else None,
        "currency": estimate.currency,
        "billed_area_km2": _round(billed),
        "requested_area_km2": _round(requested),
        "billed_to_requested_ratio": ratio,
        "image_dates": [day.isoformat() for day in estimate.image_dates],
        "image_date_count": len(estimate.image_dates),
        "cancellation_date": estimate.cancellation_date.isoformat() if estimate.cancellation_date else None,
        "recurring": request.is_recurring,
        "model": request.model,
        "satellite_constellations": list(request.satellite_constellations),
        "date_from": request.date_from.isoformat(),
        "date_to": request.date_to.isoformat() if request.date_to else None,
    }
    summary.update(notices(estimate))
    return summary


def describe_estimate(summary: Mapping[str, Any]) -> str:
    """One readable paragraph for the task log."""
    currency = summary.get("currency") or ""
    lines = [
        f"{summary['model']} order {summary['date_from']} -> {summary['date_to'] or 'recurring (no end)'}",
        f"cost this month: {summary['current_month_cost']} {currency}",
    ]
    if summary.get("recurring"):
        lines.append(f"cost next month (renewal): {summary['next_month_cost']} {currency}")
    if summary.get("requested_area_km2") is not None:
        lines.append(
            f"billed area {summary['billed_area_km2']} km² for {summary['requested_area_km2']} km² requested "
            f"(ratio {summary['billed_to_requested_ratio']})"
        )
    else:
        lines.append(f"billed area {summary['billed_area_km2']} km²")
    dates = summary.get("image_dates") or []
    shown = ", ".join(dates[:5]) + (f", … ({len(dates)} in all)" if len(dates) > 5 else "")
    lines.append(f"candidate image dates: {shown or 'none'}")
    if summary.get("cancellation_date"):
        lines.append(f"cancellation possible until: {summary['cancellation_date']}")
    return "; ".join(lines)


# ----------------------------------------------------------------------------- cancellation


@dataclass(frozen=True)
class CancelPlan:
    """What a cancel will do, decided from the order and the time before anything is sent."""

    action: str  # "cancel" | "stop_renewal" | "none" | "refuse"
    outcome: str  # what the returned JSON reports: canceled, renewal_stopped, already_canceled, ...
    message: str
    cutoff: dt.datetime
    renewal_already_happened_for: str | None = None
    coverage_until: str | None = None


def same_month(a: dt.datetime, b: dt.datetime) -> bool:
    """Whether two moments fall in the same calendar month in UTC (the API's billing month)."""
    a, b = utc(a), utc(b)
    return (a.year, a.month) == (b.year, b.month)


def month_window(now: dt.datetime) -> tuple[DateTime, DateTime]:
    """Start of ``now``'s month and the next cut-off: 00:00 UTC on the 1st of the next month."""
    import pendulum

    moment = pendulum.instance(utc(now)).in_timezone("UTC")
    start = moment.start_of("month")
    return start, start.add(months=1)


def plan_cancel(order: TaskOrder, now: dt.datetime) -> CancelPlan:
    """Apply the cancellation rules (contract section 8) to ``order`` at ``now`` (UTC).

    * Canceled (or denied): nothing to do, reported quietly.
    * Review: full cancellation; nothing is produced.
    * Accepted recurring: the cancel stops the next renewal only; coverage already paid stays. When the order
      was created before this month began, this month's renewal already happened at 00:00 UTC on the 1st.
    * No documented field says a renewal was already stopped, so a repeated cancel of an accepted recurring
      order is sent again (the docs describe no harm in it); nothing here reads an emulator-only field.
    * Accepted historical order: cannot be cancelled; refused before calling the API.
    """
    start, cutoff = month_window(now)
    month = start.format("YYYY-MM")
    next_month = cutoff.format("YYYY-MM")
    guid = order.guid
    status = order.status or "unknown"
    if order.is_failed:
        word = "canceled" if "cancel" in status.lower() else f"ended ({status})"
        return CancelPlan("none", "already_canceled", f"Order {guid} is already {word}: nothing to cancel.", cutoff)
    if status == "Review":
        return CancelPlan(
            "cancel",
            "canceled",
            f"Order {guid} is in Review: the cancel withdraws it completely; nothing will be produced"
            + (" or renewed." if order.is_recurring else "."),
            cutoff,
        )
    if order.is_recurring:
        created = utc(order.created_date) if order.created_date else None
        renewed = created is not None and created < start
        coverage_until = (cutoff.subtract(days=1)).to_date_string()
        if renewed:
            message = (
                f"Past the {start.to_iso8601_string()} cut-off: the {month} renewal of recurring order {guid} "
                f"has already happened and is paid. The cancel now stops the {next_month} renewal "
                f"(cut-off {cutoff.to_iso8601_string()}); coverage continues until {coverage_until}."
            )
        else:
            message = (
                f"Recurring order {guid} was accepted ({status}): the cancel stops its next renewal, so it will not "
                f"renew for {next_month} (cut-off {cutoff.to_iso8601_string()}); coverage already paid stays until "
                f"{coverage_until}."
            )
        return CancelPlan(
            "stop_renewal",
            "renewal_stopped",
            message,
            cutoff,
            renewal_already_happened_for=month if renewed else None,
            coverage_until=coverage_until,
        )
    return CancelPlan(
        "refuse",
        "not_cancellable",
        f"Order {guid} is a historical order ({order.date_from} to {order.date_to}) that was accepted ({status}): "
        "ClearSKY cannot cancel it, its costs are committed. Nothing was changed. Only orders still in Review, "
        "or the next renewal of a recurring order, can be cancelled.",
        cutoff,
    )


def cancel_result(
    order_guid: str,
    plan: CancelPlan,
    before: TaskOrder,
    after: TaskOrder | None,
    answered_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """Return what the cancel did, from the order as the API returns it afterwards and when its answer came.

    Read from ``after`` and ``answered_at``, not from the plan made before it was sent: a DELETE delayed past
    00:00 UTC on the 1st (retried 429s) takes effect after that month's renewal was charged.
    """
    order = after if after is not None else before
    outcome, message = plan.outcome, plan.message
    coverage_until = plan.coverage_until
    renewed_for = plan.renewal_already_happened_for
    if after is not None and plan.action != "none":
        outcome, actual, coverage_until, renewed_for = _cancel_outcome(order_guid, before, after, answered_at)
        planned = (plan.outcome, plan.coverage_until, plan.renewal_already_happened_for)
        if (outcome, coverage_until, renewed_for) != planned:
            message = actual  # the plan's words no longer hold: say what happened
    result: dict[str, Any] = {
        "order_guid": order_guid,
        "outcome": outcome,
        "status_before": before.status,
        "status_after": order.status,
        "recurring": before.is_recurring,
        "cutoff": plan.cutoff.isoformat().replace("+00:00", "Z"),
        "renewal_already_happened_for": renewed_for,
        "coverage_until": coverage_until,
        "message": message,
    }
    result.update(notices(order))
    return result


def _month(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _month_end(month: str) -> dt.date:
    year, number = (int(part) for part in month.split("-"))
    first_next = dt.date(year + number // 12, number % 12 + 1, 1)
    return first_next - dt.timedelta(days=1)


def _cancel_outcome(
    guid: str, before: TaskOrder, after: TaskOrder, answered_at: dt.datetime | None
) -> tuple[str, str, str | None, str | None]:
    """(outcome, message, coverage_until, renewal_already_happened_for) after the cancel.

    Withdrawn when the API now reports the order cancelled. Otherwise a recurring order stopped renewing in
    the month the cancel took effect, which is the month its answer came in: the renewal of that month, if
    it is later than the order's first paid month (the later of its ``From`` month and its creation month,
    both charged at creation), had been charged at 00:00 UTC on the 1st.
    """
    status = after.status or "unknown"
    if after.is_failed:
        return "canceled", f"Order {guid} is now {status}: withdrawn completely; nothing is produced.", None, None
    if after.date_to is not None and not before.is_recurring:
        return "renewal_stopped", f"Order {guid} ({status}) ends on {after.date_to}.", after.date_to.isoformat(), None
    effective = _month(utc(answered_at).date()) if answered_at is not None else None
    first_paid = _month(after.date_from) if after.date_from else effective
    if after.created_date is not None:
        first_paid = max(filter(None, (first_paid, _month(utc(after.created_date).date()))))
    if first_paid is None:
        return "renewal_stopped", f"Recurring order {guid} ({status}) no longer renews.", None, None
    paid_through = max(first_paid, effective or first_paid)
    renewed = paid_through if paid_through > first_paid else None
    end = _month_end(paid_through)
    following = (end + dt.timedelta(days=1)).isoformat()[:7]
    if renewed:
        message = (
            f"Recurring order {guid} no longer renews. The cancel took effect in {renewed}, after that month's "
            f"renewal had been charged at 00:00 UTC on the 1st, so coverage runs until {end}; it will not renew "
            f"for {following}."
        )
    else:
        message = (
            f"Recurring order {guid} ({status}) no longer renews: coverage already paid stays until {end}; it will "
            f"not renew for {following}."
        )
    return "renewal_stopped", message, end.isoformat(), renewed


__all__ = [
    "AmbiguousOrderError",
    "AttemptRecord",
    "CancelPlan",
    "adoptable_orders",
    "as_bool",
    "as_cost",
    "as_guid_list",
    "as_int",
    "cancel_result",
    "describe_estimate",
    "equal_area_km2",
    "estimate_summary",
    "is_blank_text",
    "is_failed_status",
    "month_window",
    "notices",
    "order_fingerprint",
    "order_mismatches",
    "plan_cancel",
    "requested_area_km2",
    "same_month",
    "utc",
]
