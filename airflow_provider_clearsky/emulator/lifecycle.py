"""An order's lifecycle: its status, when each image date is produced, and how long it stays downloadable.

Lifecycle (durations in ``LifecycleDurations``): an order is created in ``Review`` on accounts without
automatic acceptance (default: automatic acceptance, ``Review`` skipped). It is accepted after ``review`` (or
``Denied`` - an INVENTED status string - when the account auto-denies; the charge is refunded). Then
``Preparing`` for ``preparing``; then ``AwaitingSatelliteProducts`` while no scheduled date has been flown
over yet, ``Processing`` while a flown-over date is still being produced, and ``Completed`` (historical,
every date produced) or ``UpToDate`` (recurring, every date up to now produced). Image date ``d`` is
produced at ``max(d + 1 day + production_delay, accepted + preparing + processing)`` and is downloadable
until the end of the calendar month ``StorageMonths`` months after ``d``'s month (``StorageMonths`` = 1 is
the free window "through the end of the following month"; docs/api.md#storage: "total months beyond the
image month", extra months beyond 1 are billed).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from .config import LifecycleDurations
from .dates import add_months, midnight, month_start
from .records import Order

DENIED = "Denied"  # INVENTED: the docs give no status string for a denied order.


def status(order: Order, now: datetime, durations: LifecycleDurations) -> str:
    if order.canceled:
        return "Canceled"
    if order.denied:
        return DENIED
    if order.accepted_at is None or now < order.accepted_at:
        return "Review"
    if now < order.accepted_at + durations.preparing:
        return "Preparing"
    dates = [x for x in order.scheduled_dates() if midnight(x) + timedelta(days=1) <= now]
    pending = [x for x in dates if produced_at(order, x, durations) > now]
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


def produced_at(order: Order, d: date, durations: LifecycleDurations) -> datetime:
    assert order.accepted_at is not None
    earliest = order.accepted_at + durations.preparing + durations.processing
    return max(midnight(d) + timedelta(days=1) + durations.production_delay, earliest)


def storage_end(order: Order, d: date) -> datetime:
    return midnight(add_months(month_start(d), order.storage_months + 1))


def date_available(order: Order, d: date, now: datetime, durations: LifecycleDurations) -> bool:
    if order.accepted_at is None or now < order.accepted_at or order.denied or order.canceled:
        return False
    if d not in order.scheduled_dates():
        return False
    return produced_at(order, d, durations) <= now < storage_end(order, d)


def expired(order: Order, now: datetime) -> bool:
    if order.canceled or order.denied:
        stamp = order.canceled_at or order.review_until or order.created
        return now >= midnight(add_months(month_start(stamp.date()), 1))
    last = order.to_date or order.ends
    if last is None:
        return False
    return now >= midnight(add_months(month_start(last), order.storage_months + 1))
