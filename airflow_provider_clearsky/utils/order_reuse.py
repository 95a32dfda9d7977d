"""``if_exists="reuse"``: find an order on the account that already covers a request.

Plain functions with no Airflow imports, unit-tested on their own. An order *covers* a request when it has
the same area (matched robustly: the API echoes the area in its own WKT spelling), model, constellations and
cadence (image frequency, and the reference date when the DAG sets one: left out, it defaults to each
request's own ``date_from``, and any phase of an existing order's schedule will do), is neither failed nor
cancelled, and covers the whole requested period:

* a recurring order that still renews and started on or before the request's ``date_from`` covers any
  request from that month on (a recurring one included);
* a historical order (or a recurring one whose renewal was stopped: it has an end now) covers a historical
  request whose period lies inside its own.

A recurring request with no covering order but a renewing one that starts later (a run for an older month)
needs only the months before that start: :func:`plan_reuse` returns that historical request instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_clearsky.models import OrderRequest, TaskOrder

IF_EXISTS_CHOICES = ("create", "reuse")


def if_exists_choice(value: object) -> str:
    """``"create"`` or ``"reuse"``; ValueError naming the argument otherwise."""
    text = value.strip().lower() if isinstance(value, str) else value
    if text not in IF_EXISTS_CHOICES:
        raise ValueError(
            f"if_exists must be 'create' (always order) or 'reuse' (reuse an order that already covers the "
            f"request), got {value!r}"
        )
    return str(text)


def still_renews(order: TaskOrder) -> bool:
    """Recurring and not stopped (the emulator reports ``RenewalStopped``; the API ends a stopped order with To)."""
    return order.is_recurring and (order.model_extra or {}).get("RenewalStopped") is not True


def _same_area(order: TaskOrder, request: OrderRequest) -> bool:
    from airflow_provider_clearsky.utils.area import areas_match
    from airflow_provider_clearsky.utils.orders import request_geometry

    if request.is_grid_order:
        return _same_set(order.tiles, request.tile_guids) and _same_set(order.mini_tiles, request.mini_tile_guids)
    if order.tiles or order.mini_tiles or not order.wkt:
        return False
    geometry = request_geometry(request)
    try:
        return geometry is not None and areas_match(geometry.wkt, order.wkt)
    except ValueError:
        return False  # an area we cannot read is not proven to be ours


def _same_set(theirs: Iterable[str] | None, mine: Iterable[str] | None) -> bool:
    return sorted(x.strip().lower() for x in theirs or []) == sorted(x.strip().lower() for x in mine or [])


def differences(order: TaskOrder, request: OrderRequest, same_reference_date: bool = False) -> list[str]:
    """Return what makes ``order`` a different order from ``request``, period aside (empty: the same)."""
    reasons = []
    if order.is_failed:
        reasons.append(f"status {order.status}")
    if (order.model or "").strip().lower() != request.model.strip().lower():
        reasons.append(f"model {order.model!r}")
    if not _same_set(order.satellite_constellations, request.satellite_constellations):
        reasons.append(f"constellations {order.satellite_constellations}")
    if order.image_frequency != request.image_frequency:
        reasons.append(f"image frequency {order.image_frequency}")
    if same_reference_date and order.reference_date not in (None, request.reference_date):
        reasons.append(f"reference date {order.reference_date}")
    if not reasons and not _same_area(order, request):
        reasons.append("area")
    return reasons


def covers(order: TaskOrder, request: OrderRequest) -> bool:
    """Whether ``order``'s period covers the request's whole period (the settings compared apart)."""
    if order.date_from is None or order.date_from > request.date_from:
        return False
    if still_renews(order):
        return True
    if order.date_to is None or request.date_to is None:
        return False  # a stopped recurring order without an end, or a recurring request: not covered
    return order.date_to >= request.date_to


def _age(order: TaskOrder) -> tuple[dt.datetime, dt.date]:
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    created = order.created_date
    if created is not None and created.tzinfo is None:
        created = created.replace(tzinfo=dt.UTC)
    return (created or epoch, order.date_from or dt.date.min)


@dataclass
class ReusePlan:
    """What ``if_exists="reuse"`` decided: reuse ``order``, or order ``request`` (maybe trimmed)."""

    request: OrderRequest
    order: TaskOrder | None = None
    also_matching: list[TaskOrder] = field(default_factory=list)
    renewing_from: TaskOrder | None = None  # set when the request was trimmed to the months before this order

    @property
    def reason(self) -> str:
        """Why the reused order matches, for the log."""
        if self.order is None:
            return ""
        request = self.request
        period = (
            f"renews every month since {self.order.date_from}"
            if still_renews(self.order)
            else f"covers {self.order.date_from} .. {self.order.date_to}"
        )
        wanted = "recurring from" if request.is_recurring else "from"
        until = "" if request.is_recurring else f" to {request.date_to}"
        return (
            f"same area, model {request.model}, constellations {', '.join(request.satellite_constellations)}, "
            f"every {request.image_frequency} day(s); it {period}, the request is {wanted} {request.date_from}{until}"
        )


def plan_reuse(orders: Iterable[TaskOrder], request: OrderRequest, same_reference_date: bool = False) -> ReusePlan:
    """Plan to reuse the oldest order covering ``request``, or to order only what no order covers.

    For a recurring request with a renewing order that starts later, that is the historical request for the
    months before it (itself reused when an order covers it).
    ``same_reference_date``: the DAG set ``reference_date``, so an order must have that one too.
    """
    same = sorted((order for order in orders if not differences(order, request, same_reference_date)), key=_age)
    covering = [order for order in same if covers(order, request)]
    if covering:
        return ReusePlan(request, covering[0], covering[1:])
    later = sorted(
        (o for o in same if still_renews(o) and o.date_from is not None), key=lambda o: o.date_from or dt.date.min
    )
    if request.is_recurring and later:
        renewing = later[0]
        assert renewing.date_from is not None
        trimmed = request.model_copy(update={"date_to": renewing.date_from - dt.timedelta(days=1)})
        covering = [order for order in same if covers(order, trimmed)]
        return ReusePlan(trimmed, covering[0] if covering else None, covering[1:], renewing_from=renewing)
    return ReusePlan(request)


__all__ = ["IF_EXISTS_CHOICES", "ReusePlan", "covers", "differences", "if_exists_choice", "plan_reuse", "still_renews"]
