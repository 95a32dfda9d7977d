"""Rules about orders: what defines one (its fingerprint), which existing order is this task's, what it costs.

* fingerprint and :class:`AttemptRecord`: what a try of the create operator records before it sends create;
* adoption: :func:`order_mismatches` and :func:`adoptable_orders` tell which listed order a later try adopts;
* estimate: the small JSON summary of an estimate and the requested (equal-area) size of the AOI;
* status: when a wait for an order's status is over (:func:`order_outcome`), and the order's small record.

Plain functions with no Airflow imports, so they are unit-tested on their own. shapely is imported on
first use only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_clearsky.exceptions import AmbiguousOrderError
from airflow_provider_clearsky.models.enums import OrderStatus, is_failed_status
from airflow_provider_clearsky.utils.coercion import utc

if TYPE_CHECKING:
    from pydantic import BaseModel
    from shapely.geometry.base import BaseGeometry

    from airflow_provider_clearsky.models import OrderEstimate, OrderRequest, TaskOrder

#: A response field whose name contains one of these is an attribution/licence/provenance notice.
NOTICE_MARKERS = ("attribution", "licen", "provenance", "notice")


# ----------------------------------------------------------------------------- notices


def notices(model: BaseModel | Mapping[str, Any] | None) -> dict[str, Any]:
    """Attribution, licence, provenance or notice fields of a response, unchanged (docs/api.md#attribution)."""
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
        """Return the record as JSON, for the task state store."""
        return {"fingerprint": self.fingerprint, "since": self.since, "known": list(self.known)}

    @classmethod
    def from_json(cls, value: Any) -> AttemptRecord | None:
        """Return the record stored by :meth:`to_json`, or None when ``value`` is not one."""
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
        """Return ``since`` as a UTC moment, or None when it is not readable."""
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
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    return sorted(found, key=lambda order: utc(order.created_date) if order.created_date else epoch)


def only_adoptable(found: list[TaskOrder]) -> TaskOrder | None:
    """Return the one order this task may have created; more than one is a doubt that fails loudly."""
    if len(found) > 1:
        raise AmbiguousOrderError(
            f"{len(found)} orders could be the one this task created "
            f"({', '.join(f'{order.guid} ({order.status}, created {order.created_date})' for order in found)}). "
            "Nothing was ordered and none was adopted. Keep the one you want (cancel the others while in "
            "Review), then clear this task: it adopts a single match."
        )
    return found[0] if found else None


# ----------------------------------------------------------------------------- estimate


def requested_area_km2(request: OrderRequest) -> float | None:
    """Return the AOI's own area (each polygon counted as its own AOI), or ``None`` for tile orders."""
    from airflow_provider_clearsky.models.geometry import polygonal_parts
    from airflow_provider_clearsky.utils.area import equal_area_km2

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


def order_summary(
    order: TaskOrder,
    url: str,
    request: OrderRequest,
    *,
    adopted: bool,
    reused: bool,
    fingerprint: str,
    estimate: dict[str, Any] | None,
) -> dict[str, Any]:
    """Return the create operator's ``order_summary`` XCom: the order, how this task got it, what it cost."""
    summary: dict[str, Any] = {
        "order_guid": order.guid,
        "status": order.status,
        "url": url,
        "adopted": adopted,
        "reused": reused,
        "fingerprint": fingerprint,
        "recurring": request.is_recurring,
        "model": request.model,
        "date_from": request.date_from.isoformat(),
        "date_to": request.date_to.isoformat() if request.date_to else None,
        "estimate": estimate,
    }
    summary.update(notices(order))
    return summary


# ----------------------------------------------------------------------------- budget


def budget_refusals(
    request: OrderRequest,
    estimate: OrderEstimate,
    max_cost: float | None,
    max_next: float | None,
    *,
    expect_image_dates: bool,
) -> list[str]:
    """Why the estimated order must not be created (empty: it may be).

    Refused: this month's cost above ``max_cost``; a recurring order's next-month cost above ``max_next``;
    a cost the estimate does not report while its budget is set; no candidate image date when
    ``expect_image_dates``.
    """
    currency = estimate.currency
    refusals = []
    current, upcoming = estimate.current_month_total, estimate.next_month_total
    if max_cost is not None:
        if current is None:
            refusals.append("the estimate reports no cost for this month, so the budget cannot be checked")
        elif current > max_cost:
            refusals.append(f"this month's cost {current:.2f} {currency} exceeds max_cost {max_cost:.2f}")
    if request.is_recurring and max_next is not None:
        if upcoming is None:
            refusals.append("the estimate reports no next-month cost, so the renewal budget cannot be checked")
        elif upcoming > max_next:
            refusals.append(f"next month's cost {upcoming:.2f} {currency} exceeds max_next_month_cost {max_next:.2f}")
    if expect_image_dates and not estimate.image_dates:
        refusals.append(
            "the estimate lists no candidate image date (check date_from/date_to, image_frequency and "
            "reference_date, or set expect_image_dates=False)"
        )
    return refusals


# ----------------------------------------------------------------------------- status

SUCCESS = "success"
FAILURE = "failure"
TIMEOUT = "timeout"
ERROR = "error"

# The small, JSON-safe part of an order returned to XCom (no AOI WKT or tile lists: they can be large).
_RECORD_FIELDS = (
    "task_order_guid",
    "ordering_process_status",
    "model",
    "satellite_constellations",
    "date_from",
    "date_to",
    "reference_date",
    "image_frequency",
    "storage_months",
    "api_requests",
    "task_order_area_km2",
    "billing_cycle",
    "created_date",
)
# Names of attribution, licence or provenance fields (the API names none; as the downloads' sidecars).
_NOTICE = re.compile(r"attribution|licen[cs]e|provenance|copyright|notice", re.IGNORECASE)


def order_record(order: TaskOrder) -> dict[str, Any]:
    """Return the order as small JSON with the API's field names (``TaskOrderGuid``, ``OrderingProcessStatus``, ...).

    Attribution-like fields of the details come along unchanged, so a download given this record copies them
    to its sidecar without reading the order again.
    """
    record: dict[str, Any] = order.model_dump(mode="json", by_alias=True, include=set(_RECORD_FIELDS))
    record.update({name: value for name, value in (order.model_extra or {}).items() if _NOTICE.search(name)})
    return record


def target_statuses_for(
    order: TaskOrder, target_statuses: Collection[str] | None, recurring: bool | None = None
) -> set[str]:
    """Return the statuses that end the wait: the caller's, else Completed (historical) or UpToDate (recurring).

    Whether the order is recurring is ``recurring`` (what was ordered, known to the caller) when given, else
    the order's ``To`` as the API reports it.
    """
    if target_statuses:
        return {status.lower() for status in target_statuses}
    is_recurring = recurring if recurring is not None else order.is_recurring
    default = OrderStatus.UP_TO_DATE if is_recurring else OrderStatus.COMPLETED
    return {default.value.lower()}


def order_outcome(
    order: TaskOrder, target_statuses: Collection[str] | None, recurring: bool | None = None
) -> tuple[str, str] | None:
    """``(SUCCESS | FAILURE, message)`` when the wait is over, None while it goes on.

    A target status wins over failure, so a caller may wait for ``Canceled`` on purpose.
    """
    targets = target_statuses_for(order, target_statuses, recurring)
    status = order.status
    if status.lower() in targets:
        return SUCCESS, f"ClearSKY order {order.guid} reached status {status}"
    if is_failed_status(status):
        return FAILURE, (
            f"ClearSKY order {order.guid} ended with status {status}; it will not reach "
            f"{' or '.join(sorted(targets))}. Check the order in the ClearSKY dashboard."
        )
    return None
