"""Rules of cancelling an order: what a cancel will do at a moment, and what it did once answered.

In Review an order is withdrawn completely; after acceptance a recurring order only stops renewing (the
billing month turns at 00:00 UTC on the 1st); an accepted historical order cannot be cancelled.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_clearsky.utils.coercion import utc
from airflow_provider_clearsky.utils.orders import notices

if TYPE_CHECKING:
    from pendulum import DateTime

    from airflow_provider_clearsky.models import TaskOrder


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
    """Apply the cancellation rules (docs/api.md#cancellation) to ``order`` at ``now`` (UTC).

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
