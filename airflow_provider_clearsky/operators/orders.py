"""Operators that price and place ClearSKY tasking orders: estimate (free) and create (within budget, never twice).

The cancel and tile operators have their own modules (:mod:`.cancel`, :mod:`.tiles`) and are still importable
from here. Settings are validated in ``execute``, before any request; bad settings fail the task without
retries. See docs/operators-orders.md#ordering-operators.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_clearsky import records
from airflow_provider_clearsky._compat import (
    AirflowFailException,
    ResumableJobMixin,
)
from airflow_provider_clearsky.exceptions import (
    ClearSkyError,
    ErrorPolicy,
    InvalidRequestError,
    NotFoundError,
    OrderOutcomeUnknownError,
    error_policy,
)
from airflow_provider_clearsky.links import ClearSkyOrderLink
from airflow_provider_clearsky.models.enums import is_failed_status
from airflow_provider_clearsky.operators._order_lookup import _OrderLookupOperator
from airflow_provider_clearsky.operators._order_settings import ORDER_FIELDS, _invalid, _OrderSettingsOperator
from airflow_provider_clearsky.utils import cancellation, coercion, order_reuse
from airflow_provider_clearsky.utils import orders as order_rules

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context
    from pydantic import JsonValue

    from airflow_provider_clearsky.models import OrderEstimate, TaskOrder
    from airflow_provider_clearsky.operators.cancel import ClearSkyCancelOrderOperator
    from airflow_provider_clearsky.operators.tiles import ClearSkyOptimizeTilesOperator, ClearSkySearchTilesOperator

#: Sentinel default of ``max_cost``: leaving it out is an error, so nobody orders without a budget in mind.
_REQUIRED: Any = object()


def utc_now() -> dt.datetime:
    """Return the operators' notion of now (UTC). Tests replace it to agree with the emulator's clock."""
    return dt.datetime.now(dt.UTC)


def _fail_fast(error: ClearSkyError) -> Exception:
    """Errors the error policy fails fail the task at once; the others (already retried) stay retryable."""
    if error_policy(error) is ErrorPolicy.FAIL:
        return AirflowFailException(str(error))
    return error


class ClearSkyEstimateOrderOperator(_OrderSettingsOperator):
    """Price an order and list its candidate image dates. Free: nothing is ordered.

    Give the area as exactly one of ``wkt``, ``geojson`` (either may be a ``.wkt``/``.geojson`` file name),
    or ``tile_guids``/``minitile_guids``. ``date_from`` must be the first day of a month; ``date_to=None``
    prices a recurring order.

    Returns (XCom) a small JSON summary: ``current_month_cost``, ``next_month_cost`` (recurring orders),
    ``currency``, ``billed_area_km2``, ``requested_area_km2`` (polygon orders, equal-area on the sphere),
    ``billed_to_requested_ratio``, ``image_dates`` (ISO dates), ``image_date_count``, ``cancellation_date``,
    the order settings, and any attribution/licence/provenance notice of the response, unchanged.

    :param model: the model's API value, e.g. ``"Stratus2"``.
    :param satellite_constellations: e.g. ``["Sentinel1", "Sentinel2", "Landsat89"]``.
    :param date_from: first day of the first month (``YYYY-MM-DD``).
    :param date_to: last day, or a literal ``None`` for a recurring order (a template that renders to
        ``"None"`` or ``""`` is refused: use ``recurring``).
    :param recurring: ``True`` asks for a recurring order (``date_to`` must then be empty), ``False`` for a
        historical one (``date_to`` required); default ``None``: decided by ``date_to``. Templated.
    :param image_frequency: days between images, 1 to 7.
    :param reference_date: the day the image schedule counts from (default ``date_from``).
    :param storage_months: storage months (default 1).
    :param api_requests: download passes included (default 1).
    :param clearsky_conn_id: the ``clearsky`` connection.
    """

    def execute(self, context: Context) -> dict[str, Any]:
        """Price the order (free) and return the small JSON summary."""
        request = self.order_request()
        try:
            estimate = self.hook.estimate_order(request)
        except ClearSkyError as error:
            raise _fail_fast(error) from error
        summary = order_rules.estimate_summary(request, estimate)
        self.log.info("ClearSKY estimate: %s", order_rules.describe_estimate(summary))
        return summary


class ClearSkyCreateOrderOperator(ResumableJobMixin, _OrderLookupOperator):
    """Create a ClearSKY order, within budget, never twice. Returns the order GUID.

    It first estimates the identical order and refuses (the task fails, nothing is ordered) when this
    month's cost exceeds ``max_cost``, when a recurring order's next-month cost exceeds
    ``max_next_month_cost`` (default: ``max_cost``), when the estimate reports no cost while a budget is set,
    or when no candidate image date comes back and ``expect_image_dates`` is true.

    Then it creates the order, stores the dashboard link (extra link "ClearSKY order") at once, logs its URL,
    returns the GUID and pushes ``status_at_creation`` (the order's status when this task placed, adopted or
    reused it; ``order_status`` is its old name, kept for one release) and ``order_summary`` as extra XCom.

    With ``if_exists="reuse"`` it first returns an order on the account that already covers the request,
    spending nothing. A later try of the same task instance adopts the order an earlier try created (through
    the task state store, or without one by listing the account's orders) instead of ordering again.

    .. seealso:: ``docs/operators-orders.md``: "Recurring monitoring: reuse and windows" and "Never twice:
        the guarantee and its limit".

    :param max_cost: the most this order may cost this month, in the estimate's currency. Required: pass
        a literal ``None`` explicitly to order without a limit. A template that renders to ``"None"`` or ``""``
        (an unset param) fails the task before the estimate: a text never removes the budget.
    :param max_next_month_cost: the most a recurring order may cost next month (renewal); a literal ``None``
        (the default) means ``max_cost``; a rendered ``"None"`` or ``""`` fails like ``max_cost``.
    :param expect_image_dates: refuse when the estimate lists no candidate image date (default true).
    :param tile_deduplication: for tile/minitile orders: do not order cells already ordered before.
    :param if_exists: ``"create"`` (default: always order, never twice per task instance) or ``"reuse"``
        (reuse an order on the account that already covers the request).
    :param outcome_timeout: seconds to look for an order whose create answer was lost (default 120).
    :param clock_skew: tolerance between this worker's clock and the API's, for the lookup without a state
        store (default 10 minutes).
    :param durable: use the task state store to resume (Airflow 3.3+, default true).

    The area, model, dates and the rest are those of :class:`ClearSkyEstimateOrderOperator`.
    """

    template_fields: Sequence[str] = (
        *ORDER_FIELDS,
        "tile_deduplication",
        "max_cost",
        "max_next_month_cost",
        "expect_image_dates",
        "if_exists",
    )
    operator_extra_links = (ClearSkyOrderLink(),)
    ui_color = "#9ecbf5"

    external_id_key = "clearsky_order_guid"

    def __init__(
        self,
        *,
        max_cost: float | str | None = _REQUIRED,
        max_next_month_cost: float | str | None = None,
        expect_image_dates: bool | str = True,
        tile_deduplication: bool | str = False,
        if_exists: str = "create",
        outcome_timeout: float = 120.0,
        clock_skew: dt.timedelta = dt.timedelta(minutes=10),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if max_cost is _REQUIRED:
            raise TypeError(
                f"{kwargs.get('task_id', type(self).__name__)}: max_cost is required: the most the order may cost "
                "this month (e.g. max_cost=250.0), or max_cost=None to order without a limit"
            )
        self.max_cost = max_cost
        self.max_next_month_cost = max_next_month_cost
        self.expect_image_dates = expect_image_dates
        self.tile_deduplication = tile_deduplication
        self.if_exists = if_exists
        self.outcome_timeout = outcome_timeout
        self.clock_skew = clock_skew

    # ------------------------------------------------------------------ execute

    def execute(self, context: Context) -> str:
        """Check the settings, then adopt what an earlier try created or estimate, check the budget and create."""
        from airflow_provider_clearsky.hooks.endpoints import create_order_payload

        self._request = self.order_request()
        try:
            self._max_cost = coercion.as_cost("max_cost", self.max_cost)
            next_limit = self.max_next_month_cost
            self._max_next = (
                self._max_cost if next_limit is None else coercion.as_cost("max_next_month_cost", next_limit)
            )
            self._expect_dates = coercion.as_bool("expect_image_dates", self.expect_image_dates)
            self._dedup = coercion.as_bool("tile_deduplication", self.tile_deduplication)
            reuse = order_reuse.if_exists_choice(self.if_exists) == "reuse"
            self._payload = create_order_payload(self._request, self._dedup)
        except InvalidRequestError as error:
            raise _invalid(self.task_id, error) from None
        except ValueError as error:
            raise AirflowFailException(f"{self.task_id}: {error}") from None
        self._reused = False
        if reuse:
            try:
                orders = self.hook.list_orders()
            except ClearSkyError as error:
                raise _fail_fast(error) from error
            plan = self._plan_reuse(orders)
            if plan.order is not None:
                return self._reuse(context, plan)
            if plan.request is not self._request:
                self._request = plan.request
                self._payload = create_order_payload(self._request, self._dedup)
        self._fingerprint = order_rules.order_fingerprint(self._payload)
        self._estimate_summary: dict[str, Any] | None = None
        self._order: TaskOrder | None = None
        self._adopted = False
        self._estimated_at: dt.datetime | None = None  # set when this try sends create
        try:
            result: str = self.execute_resumable(context)
        except ClearSkyError as error:
            raise _fail_fast(error) from error
        return result

    # ------------------------------------------------------------------ ResumableJobMixin

    def get_job_status(self, external_id: JsonValue, context: Context) -> str:
        """Return the status of the order an earlier try stored: adopted unless the settings changed or it failed."""
        guid = str(external_id)
        record = self._load_record(context)
        try:
            order = self.hook.get_order(guid)
        except NotFoundError:
            self.log.warning("Order %s stored by an earlier try is unknown to the account; ordering afresh.", guid)
            return "NotFound"
        if record is not None and record.fingerprint == self._fingerprint:
            same = True
        else:
            same = not order_rules.order_mismatches(order, self._request)
        if not same:
            self.log.warning(
                "Order %s was created by an earlier try with other settings (fingerprint %s, now %s); "
                "it is left alone and a new order is placed.",
                guid,
                record.fingerprint if record else "unknown",
                self._fingerprint,
            )
            return "SettingsChanged"
        self._order = order
        self._adopted = True
        return order.status

    def is_job_active(self, status: str) -> bool:
        """Return False: placing the order is the whole job."""
        return False  # placing the order is the whole job; waiting for it is a sensor's work

    def is_job_succeeded(self, status: str) -> bool:
        """Tell whether an earlier try's order can be adopted (it exists, has these settings and did not fail)."""
        return status not in ("NotFound", "SettingsChanged") and not is_failed_status(status)

    def poll_until_complete(self, external_id: JsonValue, context: Context) -> None:
        """Do nothing: waiting for the order is a sensor's work."""
        return None

    def get_job_result(self, external_id: JsonValue, context: Context) -> str:
        """Store the order link, push its status and summary, and return the order GUID."""
        guid = str(external_id)
        order = self._order
        if order is None or order.guid.lower() != guid.lower():
            order = self.hook.get_order(guid)
        url = self.hook.settings.order_url(order.guid)
        if self._adopted:
            self.log.info("Adopted ClearSKY order %s (%s) created by an earlier try: %s", order.guid, order.status, url)
        ClearSkyOrderLink.persist(context, url)
        self._push_order_xcoms(context, order, url)
        if self._estimated_at is not None:
            self._check_charged_month(order, self._estimated_at)
        return order.guid

    def _check_charged_month(self, order: TaskOrder, estimated_at: dt.datetime) -> None:
        """Fail loudly when the order was charged at a later month's price than estimated, above the budget.

        After a create that this try sent: if the API created the order in a later month than the estimate
        was made in (the create was delayed past 00:00 UTC on the 1st, e.g. by retried 429s), it was charged
        at the new month's price; estimate again (free) and fail loudly, naming the order, above the budget.
        The GUID is stored already, so a later try adopts the order instead of ordering again.
        """
        created = order.created_date or utc_now()
        if cancellation.same_month(estimated_at, created):
            return
        estimate = self.hook.estimate_order(self._request)
        current, currency = estimate.current_month_total, estimate.currency or ""
        self.log.warning(
            "Order %s was created at %s, after the 00:00 UTC cut-off that followed the estimate (%s); at that "
            "month's prices it costs %s %s this month.",
            order.guid,
            utc_iso(created),
            utc_iso(estimated_at),
            current,
            currency,
        )
        if self._max_cost is None or (current is not None and current <= self._max_cost):
            return
        raise AirflowFailException(
            f"{self.task_id}: order {order.guid} was created at {utc_iso(created)}, after the 00:00 UTC cut-off on "
            f"the 1st that followed the estimate ({utc_iso(estimated_at)}), so it was charged at the new month's "
            f"price: {current} {currency} this month, above max_cost {self._max_cost:.2f}. The order exists and "
            "is paid; cancel it (ClearSkyCancelOrderOperator) if it is not wanted: in Review it is withdrawn and "
            f"refunded. {self.hook.settings.order_url(order.guid)}"
        )

    def submit_job(self, context: Context) -> JsonValue:
        """Adopt what an earlier try created, or estimate, check the budget, record, and create."""
        store = context.get("task_state_store") if getattr(self, "durable", False) else None
        record = self._load_record(context)
        if record is not None and record.fingerprint != self._fingerprint:
            self.log.warning("An earlier try recorded other settings (%s); they are ignored.", record.fingerprint)
            record = None
        since = None if record is not None or store is not None else self._fallback_since(context)
        if record is not None or since is not None:
            found = self._adoptable(record, since)
            if found is not None:
                return self._adopt(context, found, "an earlier try's order")

        estimated_at = utc_now()
        estimate = self._estimate()
        existing = self._matching_orders()
        if record is not None:
            found = order_rules.only_adoptable(
                order_rules.adoptable_orders(
                    existing, self._request, known=record.known, since=None, clock_skew=self.clock_skew
                )
            )
            if found is not None:
                return self._adopt(context, found, "an earlier try's order")
        if existing:
            self.log.warning(
                "%d identical order(s) already exist on this account (%s); placing another as asked.",
                len(existing),
                ", ".join(order.guid for order in existing),
            )
        known = sorted({order.guid.lower() for order in existing} | set(record.known if record else []))
        first = record.since if record is not None else utc_iso(utc_now())
        new_record = order_rules.AttemptRecord(self._fingerprint, first, known)
        if store is not None:
            store.set(self.attempt_key, new_record.to_json())

        if not cancellation.same_month(estimated_at, utc_now()):
            # The 00:00 UTC cut-off on the 1st passed since the estimate: the order would be priced (and
            # charged) for the new month, so the budget is checked again on a fresh estimate.
            self.log.warning("The month changed since the estimate (00:00 UTC on the 1st); estimating again.")
            estimated_at = utc_now()
            estimate = self._estimate()
        self._estimated_at = estimated_at

        self.log.info(
            "Creating ClearSKY order (%s, %s)%s",
            self._request.model,
            "recurring" if self._request.is_recurring else f"until {self._request.date_to}",
            f", estimated {estimate.current_month_total} {estimate.currency} this month" if estimate else "",
        )
        try:
            order = self.hook.create_order(self._request, tile_deduplication=self._dedup)
        except OrderOutcomeUnknownError as error:
            self.log.warning("The create answer was lost (%s); looking the order up instead of sending again.", error)
            found = self._wait_for_order(new_record)
            if found is None:
                raise OrderOutcomeUnknownError(
                    f"The create request was sent but its outcome is unknown, and no new order with these settings "
                    f"appeared within {self.outcome_timeout:g} s. Nothing was sent twice. The next try looks again "
                    f"before it creates. The create's answer: {error}"
                ) from error
            return self._adopt(context, found, "the order whose create answer was lost")
        self._order = order
        url = self.hook.settings.order_url(order.guid)
        ClearSkyOrderLink.persist(context, url)
        self.log.info("Created ClearSKY order %s (%s): %s", order.guid, order.status, url)
        return order.guid

    # ------------------------------------------------------------------ if_exists="reuse"

    def _reuse(self, context: Context, plan: order_reuse.ReusePlan) -> str:
        """Return the covering order's GUID: nothing is estimated, ordered or spent."""
        order = plan.order
        assert order is not None
        self._order, self._reused, self._adopted = order, True, False
        self._fingerprint, self._estimate_summary = order_rules.order_fingerprint(self._payload), None
        url = self.hook.settings.order_url(order.guid)
        ClearSkyOrderLink.persist(context, url)
        self.log.info(
            "Reusing ClearSKY order %s (%s), nothing ordered: %s. %s", order.guid, order.status, plan.reason, url
        )
        if plan.also_matching:
            self.log.info(
                "Also covering, not reused (the oldest is): %s",
                ", ".join(f"{other.guid} (created {other.created_date})" for other in plan.also_matching),
            )
        self._push_order_xcoms(context, order, url)
        return order.guid

    # ------------------------------------------------------------------ lineage

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """Return the order created, adopted or reused as the OpenLineage output of the task."""
        from airflow_provider_clearsky.utils import openlineage

        order = getattr(self, "_order", None)
        outputs = [] if order is None else [openlineage.order_dataset_name(self.hook.settings.base_url, order.guid)]
        return openlineage.operator_lineage([], outputs)

    # ------------------------------------------------------------------ helpers

    def _push_order_xcoms(self, context: Context, order: TaskOrder, url: str) -> None:
        """Push ``status_at_creation`` and ``order_summary`` (and ``order_status``, see below) as XCom.

        ``status_at_creation`` is what the order's status was when this task placed, adopted or reused it (the
        order moves on; the sensor tells its current status). ``order_status`` is the
        same value under its old name, kept for one release.
        """
        ti = context["ti"]
        ti.xcom_push(key="status_at_creation", value=order.status)
        ti.xcom_push(key="order_status", value=order.status)
        ti.xcom_push(key="order_summary", value=self._summary(order, url))
        self._record(context, order)

    def _estimate(self) -> OrderEstimate:
        estimate = self.hook.estimate_order(self._request)
        summary = order_rules.estimate_summary(self._request, estimate)
        self._estimate_summary = summary
        self.log.info("ClearSKY estimate: %s", order_rules.describe_estimate(summary))
        refusals = order_rules.budget_refusals(
            self._request, estimate, self._max_cost, self._max_next, expect_image_dates=self._expect_dates
        )
        if refusals:
            raise AirflowFailException(f"{self.task_id}: order refused, nothing was ordered: " + "; ".join(refusals))
        return estimate

    def _record(self, context: Context, order: TaskOrder) -> None:
        """Record the order and what this run paid for it, for the ClearSKY view.

        The cost is None when the order was reused, or adopted from an earlier try whose estimate is gone.
        """
        estimate = self._estimate_summary or {}
        records.push(
            context,
            "order",
            self.clearsky_conn_id,
            order.guid,
            action="reused" if getattr(self, "_reused", False) else "adopted" if self._adopted else "created",
            cost=estimate.get("current_month_cost"),
            next_month_cost=estimate.get("next_month_cost"),
            currency=estimate.get("currency"),
            recurring=self._request.is_recurring,
            model=self._request.model,
            date_from=self._request.date_from.isoformat(),
            date_to=self._request.date_to.isoformat() if self._request.date_to else None,
        )

    def _summary(self, order: TaskOrder, url: str) -> dict[str, Any]:
        return order_rules.order_summary(
            order,
            url,
            self._request,
            adopted=self._adopted,
            reused=getattr(self, "_reused", False),
            fingerprint=self._fingerprint,
            estimate=self._estimate_summary,
        )


def utc_iso(moment: dt.datetime) -> str:
    """Return ``moment`` in UTC as ISO 8601 with a ``Z`` (``2026-07-01T00:00:00Z``), as records and logs show it."""
    return coercion.utc(moment).isoformat().replace("+00:00", "Z")


#: The operators of other modules that this module has always offered (imported on first use).
_MOVED = {
    "ClearSkyCancelOrderOperator": "airflow_provider_clearsky.operators.cancel",
    "ClearSkySearchTilesOperator": "airflow_provider_clearsky.operators.tiles",
    "ClearSkyOptimizeTilesOperator": "airflow_provider_clearsky.operators.tiles",
}


def __getattr__(name: str) -> Any:
    """Return an operator that lives in its own module, by the import path this module always gave it."""
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ClearSkyCancelOrderOperator",
    "ClearSkyCreateOrderOperator",
    "ClearSkyEstimateOrderOperator",
    "ClearSkyOptimizeTilesOperator",
    "ClearSkySearchTilesOperator",
    "utc_now",
]
