"""Operators that price, place and cancel ClearSKY tasking orders, and find tiles to order.

* :class:`ClearSkyEstimateOrderOperator`: price and candidate dates of an order (free).
* :class:`ClearSkyCreateOrderOperator`: estimate, refuse above budget, then create, never twice.
* :class:`ClearSkyCancelOrderOperator`: cancel an order in Review or stop a recurring order's renewal.
* :class:`ClearSkySearchTilesOperator` / :class:`ClearSkyOptimizeTilesOperator`: tile and minitile GUIDs of
  an area, to feed tile-mode orders.

Every user-facing argument is templated; ``wkt`` and ``geojson`` may name a ``.wkt`` / ``.geojson`` file
(read relative to the DAG folder or ``template_searchpath``). Nothing is checked or converted in
``__init__``: settings are validated in ``execute``, before any request, and bad settings fail the task
without retries (:class:`AirflowFailException`).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_clearsky import records
from airflow_provider_clearsky._compat import (
    AirflowFailException,
    BaseOperator,
    ResumableJobMixin,
)
from airflow_provider_clearsky.connection import DEFAULT_CONN_ID
from airflow_provider_clearsky.exceptions import (
    AmbiguousOrderError,
    ClearSkyError,
    ErrorPolicy,
    InvalidRequestError,
    NotFoundError,
    OrderOutcomeUnknownError,
    error_policy,
)
from airflow_provider_clearsky.links import ClearSkyOrderLink
from airflow_provider_clearsky.models.enums import is_failed_status
from airflow_provider_clearsky.utils import arguments, cancellation, coercion, order_reuse
from airflow_provider_clearsky.utils import orders as order_rules

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context
    from pydantic import JsonValue

    from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook
    from airflow_provider_clearsky.models import OrderEstimate, OrderRequest, TaskOrder

AOI_FIELDS = ("wkt", "geojson", "tile_guids", "minitile_guids")
ORDER_FIELDS = (
    *AOI_FIELDS,
    "model",
    "satellite_constellations",
    "image_frequency",
    "reference_date",
    "date_from",
    "date_to",
    "storage_months",
    "api_requests",
    "recurring",
    "clearsky_conn_id",
)

#: Sentinel default of ``max_cost``: leaving it out is an error, so nobody orders without a budget in mind.
_REQUIRED: Any = object()


def utc_now() -> dt.datetime:
    """Return the operators' notion of now (UTC). Tests replace it to agree with the emulator's clock."""
    return dt.datetime.now(dt.timezone.utc)


def _invalid(task_id: str, error: InvalidRequestError) -> AirflowFailException:
    """``task: invalid settings: date_from: must be ...; image_frequency: ...``: the operator's argument names."""
    detail = arguments.order_field_errors_text(error)
    return AirflowFailException(f"{task_id}: invalid settings: {detail}")


def _fail_fast(error: ClearSkyError) -> Exception:
    """Errors the error policy fails fail the task at once; the others (already retried) stay retryable."""
    if error_policy(error) is ErrorPolicy.FAIL:
        return AirflowFailException(str(error))
    return error


class _ClearSkyOperator(BaseOperator):
    """Connection handling shared by the operators."""

    def __init__(self, *, clearsky_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clearsky_conn_id = clearsky_conn_id

    @cached_property
    def hook(self) -> ClearSkyHook:
        from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook

        return ClearSkyHook(clearsky_conn_id=self.clearsky_conn_id)


class _OrderSettingsOperator(_ClearSkyOperator):
    """The settings that define an order, shared by estimate and create."""

    template_fields: Sequence[str] = ORDER_FIELDS
    template_ext: Sequence[str] = (".wkt", ".geojson")
    template_fields_renderers: ClassVar[dict[str, str]] = {
        "geojson": "json",
        "tile_guids": "json",
        "minitile_guids": "json",
    }
    ui_color = "#cfe8fc"

    def __init__(
        self,
        *,
        model: str,
        satellite_constellations: list[str] | str,
        date_from: str | dt.date,
        date_to: str | dt.date | None = None,
        image_frequency: int | str = 1,
        reference_date: str | dt.date | None = None,
        wkt: str | None = None,
        geojson: dict[str, Any] | str | None = None,
        tile_guids: list[str] | str | None = None,
        minitile_guids: list[str] | str | None = None,
        storage_months: int | str = 1,
        api_requests: int | str = 1,
        recurring: bool | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.recurring = recurring
        self.wkt = wkt
        self.geojson = geojson
        self.tile_guids = tile_guids
        self.minitile_guids = minitile_guids
        self.model = model
        self.satellite_constellations = satellite_constellations
        self.image_frequency = image_frequency
        self.reference_date = reference_date
        self.date_from = date_from
        self.date_to = date_to
        self.storage_months = storage_months
        self.api_requests = api_requests

    def order_request(self) -> OrderRequest:
        """Return the validated request, from the rendered settings; a bad setting fails the task (no retry)."""
        from airflow_provider_clearsky.models import OrderRequest

        try:
            date_to = self._date_to()
            return OrderRequest(
                wkt=self.wkt,
                geo_json=self.geojson or None,
                tile_guids=coercion.as_guid_list("tile_guids", self.tile_guids),
                mini_tile_guids=coercion.as_guid_list("minitile_guids", self.minitile_guids),
                model=self.model,
                satellite_constellations=self.satellite_constellations,
                image_frequency=coercion.as_int("image_frequency", self.image_frequency),
                reference_date=self.reference_date or None,
                date_from=self.date_from,
                date_to=date_to,
                storage_months=coercion.as_int("storage_months", self.storage_months),
                api_requests=coercion.as_int("api_requests", self.api_requests),
            )
        except InvalidRequestError as error:
            raise _invalid(self.task_id, error) from None
        except ValueError as error:
            raise AirflowFailException(f"{self.task_id}: invalid order settings: {error}") from None

    def _date_to(self) -> Any:
        """Return ``date_to``, where only a literal ``None`` or ``recurring=True`` asks for a recurring order.

        A template that renders to ``"None"`` or ``""`` must not turn a historical order into a recurring one.
        """
        date_to, recurring = self.date_to, self.recurring
        if recurring is not None:
            try:
                wanted = coercion.as_bool("recurring", recurring, strict=True)
            except ValueError as error:
                raise AirflowFailException(f"{self.task_id}: invalid order settings: {error}") from None
            blank = date_to is None or coercion.is_blank_text(date_to)
            if wanted and not blank:
                raise AirflowFailException(
                    f"{self.task_id}: date_to: {date_to!r} contradicts recurring=True (a recurring order has no end); "
                    "leave date_to empty or set recurring=False"
                )
            if wanted:
                return None
            if blank:
                raise AirflowFailException(
                    f"{self.task_id}: date_to: recurring=False needs the order's last day (YYYY-MM-DD), got {date_to!r}"
                )
            return date_to
        if coercion.is_blank_text(date_to):
            raise AirflowFailException(
                f"{self.task_id}: date_to rendered to {date_to!r}, which is not a date; give the last day "
                "(YYYY-MM-DD), or for a recurring order a literal date_to=None or recurring=True (a text never "
                "turns an order into a recurring one)"
            )
        return date_to


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


class ClearSkyCreateOrderOperator(ResumableJobMixin, _OrderSettingsOperator):
    """Create a ClearSKY order, within budget, never twice. Returns the order GUID.

    It first estimates the identical order and refuses (the task fails, nothing is ordered) when this
    month's cost exceeds ``max_cost``, when a recurring order's next-month cost exceeds
    ``max_next_month_cost`` (default: ``max_cost``), when the estimate reports no cost while a budget is set,
    or when no candidate image date comes back and ``expect_image_dates`` is true.

    Then it creates the order, stores the dashboard link (extra link "ClearSKY order") at once, logs its URL,
    returns the GUID and pushes ``status_at_creation`` (the order's status when this task placed, adopted or
    reused it; ``order_status`` is its old name, kept for one release) and ``order_summary`` as extra XCom.

    **Reuse** (``if_exists="reuse"``, for DAGs that run every month or week): before anything else it lists
    the account's orders and returns the GUID of one that already covers the request (same area, matched by
    overlap, not coordinates; same model, constellations and cadence; not failed or cancelled; a recurring
    order that still renews and started on or before ``date_from``, or a historical order whose period
    contains the request's). It spends nothing, estimates nothing, logs which order and why, and the extra
    link points at it. Several: the oldest is reused and the others are named in the log. A recurring request
    that finds a renewing order starting later (a run for an older month) orders just the months before it,
    as a historical order. None: estimate, budget and create exactly as with ``"create"``. A reused order is
    not checked against ``max_cost``: it costs nothing now (its renewals were agreed when it was placed).

    **Never twice.** Before sending create, it records the order's fingerprint (a hash of the whole create
    body), the time, and which identical orders already exist, in the task instance's state store (Airflow
    3.3+ ``task_state_store``, through :class:`ResumableJobMixin`); after create it stores the order GUID
    there too. A later try of the same task instance (retry, or the task cleared and run again) finds the
    GUID and adopts that order; if the earlier try died between sending create and storing the GUID, it
    lists the account's orders and adopts the new one with the same settings. When the create answer is
    lost (timeout, dropped connection), the same try looks for the order for ``outcome_timeout`` seconds
    before giving up with a retryable error; the next try looks again before it creates. An order that was
    cancelled or denied is not adopted: a later try orders again, like the mixin resubmits a failed job.
    Without a state store (Airflow below 3.3, or ``durable=False``), a retry adopts an identical order created
    since the DAG run started (minus ``clock_skew``). Limits: an identical order placed by hand or by
    another DAG in that same window is adopted as if it were this task's; two task instances that order the
    identical thing at the same moment may both be conflated onto one order.

    :param max_cost: the most this order may cost this month, in the estimate's currency. Required: pass
        a literal ``None`` explicitly to order without a limit. A template that renders to ``"None"`` or ``""``
        (an unset param) fails the task before the estimate: a text never removes the budget.
    :param max_next_month_cost: the most a recurring order may cost next month (renewal); a literal ``None``
        (the default) means ``max_cost``; a rendered ``"None"`` or ``""`` fails like ``max_cost``.
    :param expect_image_dates: refuse when the estimate lists no candidate image date (default true).
    :param tile_deduplication: for tile/minitile orders: do not order cells already ordered before.
    :param if_exists: ``"create"`` (default: always order, never twice per task instance) or ``"reuse"``
        (reuse an order on the account that already covers the request; see above).
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
    attempt_key = "clearsky_order_attempt"
    lookup_interval: float = 5.0

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
            plan = self._plan_reuse()
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
            found = self._pick(
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

    def _plan_reuse(self) -> order_reuse.ReusePlan:
        try:
            orders = self.hook.list_orders()
        except ClearSkyError as error:
            raise _fail_fast(error) from error
        plan = order_reuse.plan_reuse(orders, self._request, same_reference_date=bool(self.reference_date))
        if plan.renewing_from is not None and plan.order is None:
            self.log.info(
                "Recurring order %s renews only from %s: ordering just %s .. %s, as a historical order.",
                plan.renewing_from.guid,
                plan.renewing_from.date_from,
                plan.request.date_from,
                plan.request.date_to,
            )
        elif plan.order is None:
            self.log.info("No order on the account covers this request: estimating and ordering.")
        return plan

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
        currency = estimate.currency
        refusals = []
        current, upcoming = estimate.current_month_total, estimate.next_month_total
        if self._max_cost is not None:
            if current is None:
                refusals.append("the estimate reports no cost for this month, so the budget cannot be checked")
            elif current > self._max_cost:
                refusals.append(f"this month's cost {current:.2f} {currency} exceeds max_cost {self._max_cost:.2f}")
        if self._request.is_recurring and self._max_next is not None:
            if upcoming is None:
                refusals.append("the estimate reports no next-month cost, so the renewal budget cannot be checked")
            elif upcoming > self._max_next:
                refusals.append(
                    f"next month's cost {upcoming:.2f} {currency} exceeds max_next_month_cost {self._max_next:.2f}"
                )
        if self._expect_dates and not estimate.image_dates:
            refusals.append(
                "the estimate lists no candidate image date (check date_from/date_to, image_frequency and "
                "reference_date, or set expect_image_dates=False)"
            )
        if refusals:
            raise AirflowFailException(f"{self.task_id}: order refused, nothing was ordered: " + "; ".join(refusals))
        return estimate

    def _matching_orders(self) -> list[TaskOrder]:
        geometry = order_rules.request_geometry(self._request)
        return [
            order
            for order in self.hook.list_orders()
            if not order_rules.order_mismatches(order, self._request, geometry)
        ]

    def _adoptable(self, record: order_rules.AttemptRecord | None, since: dt.datetime | None) -> TaskOrder | None:
        return self._pick(
            order_rules.adoptable_orders(
                self.hook.list_orders(),
                self._request,
                known=record.known if record is not None else None,
                since=since,
                clock_skew=self.clock_skew,
            )
        )

    def _pick(self, found: list[TaskOrder]) -> TaskOrder | None:
        """Return the one order this task may have created; more than one is a doubt that fails loudly."""
        if len(found) > 1:
            raise AmbiguousOrderError(
                f"{len(found)} orders could be the one this task created "
                f"({', '.join(f'{order.guid} ({order.status}, created {order.created_date})' for order in found)}). "
                "Nothing was ordered and none was adopted. Keep the one you want (cancel the others while in "
                "Review), then clear this task: it adopts a single match."
            )
        return found[0] if found else None

    def _wait_for_order(self, record: order_rules.AttemptRecord) -> TaskOrder | None:
        deadline = time.monotonic() + self.outcome_timeout
        while True:
            try:
                found = self._adoptable(record, None)
            except AmbiguousOrderError:
                raise
            except ClearSkyError as error:
                self.log.warning("Looking the order up failed (%s); trying again.", error)
                found = None
            if found is not None or time.monotonic() >= deadline:
                return found
            time.sleep(min(self.lookup_interval, max(deadline - time.monotonic(), 0.0)))

    def _adopt(self, context: Context, order: TaskOrder, what: str) -> str:
        self._order = order
        self._adopted = True
        url = self.hook.settings.order_url(order.guid)
        ClearSkyOrderLink.persist(context, url)
        self.log.info("Adopting %s: %s (%s), created %s: %s", what, order.guid, order.status, order.created_date, url)
        return order.guid

    def _load_record(self, context: Context) -> order_rules.AttemptRecord | None:
        store = context.get("task_state_store") if getattr(self, "durable", False) else None
        if store is None:
            return None
        return order_rules.AttemptRecord.from_json(store.get(self.attempt_key))

    def _fallback_since(self, context: Context) -> dt.datetime | None:
        """Without a state store, a retry looks for orders created since the DAG run started."""
        ti = context.get("ti")
        if ti is None or int(getattr(ti, "try_number", 1) or 1) <= 1:
            return None
        dag_run = context.get("dag_run")
        start = getattr(dag_run, "start_date", None) or getattr(ti, "start_date", None)
        return coercion.utc(start) if isinstance(start, dt.datetime) else None

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
        summary: dict[str, Any] = {
            "order_guid": order.guid,
            "status": order.status,
            "url": url,
            "adopted": self._adopted,
            "reused": getattr(self, "_reused", False),
            "fingerprint": self._fingerprint,
            "recurring": self._request.is_recurring,
            "model": self._request.model,
            "date_from": self._request.date_from.isoformat(),
            "date_to": self._request.date_to.isoformat() if self._request.date_to else None,
            "estimate": self._estimate_summary,
        }
        summary.update(order_rules.notices(order))
        return summary


def utc_iso(moment: dt.datetime) -> str:
    return coercion.utc(moment).isoformat().replace("+00:00", "Z")


class ClearSkyCancelOrderOperator(_ClearSkyOperator):
    """Cancel an order: fully while it is in Review, or stop a recurring order's next renewal.

    It fetches the order first and logs what the cancel will do under ClearSKY's rules: in Review the order
    is withdrawn completely; after acceptance a recurring order only stops renewing (the cut-off is 00:00 UTC
    on the 1st of the next month; past it, this month's renewal has already happened and the cancel stops the
    following one); an accepted historical order cannot be cancelled and the task fails, changing nothing.
    Cancelling an order that is already cancelled succeeds quietly; cancelling an accepted recurring order
    again sends the cancel again (no documented field says its renewal was already stopped).

    Returns (XCom) ``{"order_guid", "outcome", "status_before", "status_after", "recurring", "cutoff",
    "renewal_already_happened_for", "coverage_until", "message"}`` plus any attribution notice. ``outcome``
    is one of ``canceled``, ``renewal_stopped``, ``already_canceled``.

    :param order_guid: the order's GUID, e.g. ``"{{ ti.xcom_pull(task_ids='create_order') }}"``.
    :param clearsky_conn_id: the ``clearsky`` connection.
    """

    template_fields: Sequence[str] = ("order_guid", "clearsky_conn_id")
    operator_extra_links = (ClearSkyOrderLink(),)
    ui_color = "#f7c6c5"

    def __init__(self, *, order_guid: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.order_guid = order_guid

    def execute(self, context: Context) -> dict[str, Any]:
        """Cancel the order (or stop its renewal) as its status allows; return what was done."""
        from airflow_provider_clearsky.models.orders import order_guid

        try:
            guid = order_guid(self.order_guid)
        except ValueError as error:
            raise AirflowFailException(f"{self.task_id}: {error}") from None
        try:
            order = self.hook.get_order(guid)
        except ClearSkyError as error:
            raise _fail_fast(error) from error
        ClearSkyOrderLink.persist(context, self.hook.settings.order_url(order.guid))
        plan = cancellation.plan_cancel(order, utc_now())
        if plan.action == "refuse":
            raise AirflowFailException(plan.message)
        if plan.action == "none":
            self.log.info(plan.message)
            return cancellation.cancel_result(order.guid, plan, order, None)
        self.log.info("Cancelling: %s", plan.message)
        try:
            answer = self.hook.cancel_order(order.guid)
        except ClearSkyError as error:
            raise _fail_fast(error) from error
        answered_at = utc_now()  # the cancel took effect by now: retries may have carried it past a cut-off
        after = _order_from(answer)
        if after is None:
            try:
                after = self.hook.get_order(order.guid)
            except NotFoundError:
                if plan.outcome != "canceled":
                    raise
                # The docs: a cancel in Review removes the order completely; the account may no longer list it.
                result = cancellation.cancel_result(order.guid, plan, order, None, answered_at)
                result["status_after"] = "removed"
                self.log.info("Order %s was withdrawn and is no longer listed (%s).", order.guid, plan.outcome)
                return result
        result = cancellation.cancel_result(order.guid, plan, order, after, answered_at)
        if (result["outcome"], result["coverage_until"]) != (plan.outcome, plan.coverage_until):
            self.log.warning("The cancel did not do what was planned (it landed later, or the order changed).")
        self.log.info("Order %s is now %s (%s): %s", order.guid, after.status, result["outcome"], result["message"])
        return result


def _order_from(answer: Any) -> TaskOrder | None:
    """Return the order in a cancel answer (as the emulator sends it); the contract does not say, so accept anything."""
    from airflow_provider_clearsky.models import TaskOrder

    if isinstance(answer, dict) and any(key.lower() == "taskorderguid" for key in answer):
        try:
            return TaskOrder.model_validate(answer)
        except ValueError:
            return None
    return None


class _AoiOperator(_ClearSkyOperator):
    template_fields: Sequence[str] = ("wkt", "geojson", "clearsky_conn_id")
    template_ext: Sequence[str] = (".wkt", ".geojson")
    template_fields_renderers: ClassVar[dict[str, str]] = {"geojson": "json"}

    def __init__(self, *, wkt: str | None = None, geojson: dict[str, Any] | str | None = None, **kwargs: Any) -> None:
        # Each key is also its own XCom, so `op.output["tile_guids"]` feeds a tile order directly.
        kwargs.setdefault("multiple_outputs", True)
        super().__init__(**kwargs)
        self.wkt = wkt
        self.geojson = geojson


class ClearSkySearchTilesOperator(_AoiOperator):
    """The orderable tiles and minitiles of an area (free): ``{"tile_guids": [...], "minitile_guids": [...]}``.

    Give exactly one of ``wkt``, ``geojson`` (either may be a ``.wkt``/``.geojson`` file), ``tile_guids`` /
    ``minitile_guids`` (look those cells up), or ``tile_guid_for_minitiles`` (the minitiles inside one tile).
    Feed the result to a tile-mode order: ``tile_guids=search.output["tile_guids"]``.
    """

    template_fields: Sequence[str] = (
        *_AoiOperator.template_fields,
        "tile_guids",
        "minitile_guids",
        "tile_guid_for_minitiles",
    )

    def __init__(
        self,
        *,
        tile_guids: list[str] | str | None = None,
        minitile_guids: list[str] | str | None = None,
        tile_guid_for_minitiles: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.tile_guids = tile_guids
        self.minitile_guids = minitile_guids
        self.tile_guid_for_minitiles = tile_guid_for_minitiles

    def execute(self, context: Context) -> dict[str, list[str]]:
        """Return the tile and minitile GUIDs of the area or cells given."""
        from airflow_provider_clearsky.models import TileSearchRequest

        try:
            request = TileSearchRequest(
                wkt=self.wkt or None,
                geo_json=self.geojson or None,
                tile_guids=coercion.as_guid_list("tile_guids", self.tile_guids),
                mini_tile_guids=coercion.as_guid_list("minitile_guids", self.minitile_guids),
                tile_guid_for_mini_tiles=self.tile_guid_for_minitiles or None,
            )
        except InvalidRequestError as error:
            raise _invalid(self.task_id, error) from None
        except ValueError as error:
            raise AirflowFailException(f"{self.task_id}: {error}") from None
        try:
            found = self.hook.search_tiles(request)
        except ClearSkyError as error:
            raise _fail_fast(error) from error
        result = {"tile_guids": found.tile_guids, "minitile_guids": found.mini_tile_guids}
        self.log.info("Found %d tile(s) and %d minitile(s).", len(result["tile_guids"]), len(result["minitile_guids"]))
        return result


class ClearSkyOptimizeTilesOperator(_AoiOperator):
    """The cheapest tile and minitile cover of an area (free): ``{"tile_guids": [...], "minitile_guids": [...]}``.

    Give the area as ``wkt`` or ``geojson`` (either may be a ``.wkt``/``.geojson`` file).
    """

    def execute(self, context: Context) -> dict[str, list[str]]:
        """Return the cheapest tile and minitile cover of the area."""
        from airflow_provider_clearsky.models.geometry import order_wkt

        given = [(name, value) for name, value in (("wkt", self.wkt), ("geojson", self.geojson)) if value]
        if len(given) != 1:
            raise AirflowFailException(f"{self.task_id}: give exactly one area: wkt or geojson")
        argument, area = given[0]
        try:
            order_wkt(area)  # the hook's own check, here to name the argument given
        except ValueError as error:
            raise AirflowFailException(f"{self.task_id}: {argument} {error}") from None
        try:
            found = self.hook.optimize_tiles(area)
        except ClearSkyError as error:
            raise _fail_fast(error) from error
        result = {"tile_guids": list(found.tiles), "minitile_guids": list(found.mini_tiles)}
        self.log.info(
            "Optimized cover: %d tile(s) and %d minitile(s).", len(result["tile_guids"]), len(result["minitile_guids"])
        )
        return result


__all__ = [
    "ClearSkyCancelOrderOperator",
    "ClearSkyCreateOrderOperator",
    "ClearSkyEstimateOrderOperator",
    "ClearSkyOptimizeTilesOperator",
    "ClearSkySearchTilesOperator",
    "utc_now",
]
