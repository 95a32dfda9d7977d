"""The create operator's look-ups on the account: the order an earlier try created, or one to reuse.

A later try of the same task instance adopts what an earlier try created instead of ordering again; the
rules of what matches are :mod:`airflow_provider_clearsky.utils.orders` and
:mod:`airflow_provider_clearsky.utils.order_reuse`.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING

from airflow_provider_clearsky.exceptions import AmbiguousOrderError, ClearSkyError
from airflow_provider_clearsky.links import ClearSkyOrderLink
from airflow_provider_clearsky.operators._order_settings import _OrderSettingsOperator
from airflow_provider_clearsky.utils import coercion, order_reuse
from airflow_provider_clearsky.utils import orders as order_rules

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_clearsky.models import OrderRequest, TaskOrder


class _OrderLookupOperator(_OrderSettingsOperator):
    """Find existing orders of the account for the create operator (which sets the attributes below)."""

    attempt_key = "clearsky_order_attempt"
    lookup_interval: float = 5.0
    clock_skew: dt.timedelta
    outcome_timeout: float
    _request: OrderRequest
    _order: TaskOrder | None
    _adopted: bool

    def _matching_orders(self) -> list[TaskOrder]:
        geometry = order_rules.request_geometry(self._request)
        return [
            order
            for order in self.hook.list_orders()
            if not order_rules.order_mismatches(order, self._request, geometry)
        ]

    def _adoptable(self, record: order_rules.AttemptRecord | None, since: dt.datetime | None) -> TaskOrder | None:
        return order_rules.only_adoptable(
            order_rules.adoptable_orders(
                self.hook.list_orders(),
                self._request,
                known=record.known if record is not None else None,
                since=since,
                clock_skew=self.clock_skew,
            )
        )

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

    def _plan_reuse(self, orders: list[TaskOrder]) -> order_reuse.ReusePlan:
        """Return which of the account's ``orders`` covers the request, logging what is ordered if none does."""
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
