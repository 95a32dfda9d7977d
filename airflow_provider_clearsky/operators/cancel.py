"""``ClearSkyCancelOrderOperator``: cancel an order in Review, or stop a recurring order's renewal.

The rules (what a cancel does at a given moment, and what it did once answered) are
:mod:`airflow_provider_clearsky.utils.cancellation`. The clock is :func:`~.orders.utc_now`, which tests replace.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_clearsky._compat import AirflowFailException
from airflow_provider_clearsky.exceptions import ClearSkyError, NotFoundError
from airflow_provider_clearsky.links import ClearSkyOrderLink
from airflow_provider_clearsky.operators import orders
from airflow_provider_clearsky.operators._order_settings import _ClearSkyOperator
from airflow_provider_clearsky.utils import cancellation

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_clearsky.models import TaskOrder


class ClearSkyCancelOrderOperator(_ClearSkyOperator):
    """Cancel an order: fully while it is in Review, or stop a recurring order's next renewal.

    It fetches the order and logs what the cancel will do before sending it; an accepted historical order
    cannot be cancelled, and the task fails, changing nothing. The result says what the cancel did, read
    after its answer. See docs/operators-orders.md#clearskycancelorderoperator.

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
            raise orders._fail_fast(error) from error
        ClearSkyOrderLink.persist(context, self.hook.settings.order_url(order.guid))
        plan = cancellation.plan_cancel(order, orders.utc_now())
        if plan.action == "refuse":
            raise AirflowFailException(plan.message)
        if plan.action == "none":
            self.log.info(plan.message)
            return cancellation.cancel_result(order.guid, plan, order, None)
        self.log.info("Cancelling: %s", plan.message)
        try:
            answer = self.hook.cancel_order(order.guid)
        except ClearSkyError as error:
            raise orders._fail_fast(error) from error
        answered_at = orders.utc_now()  # the cancel took effect by now: retries may have carried it past a cut-off
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
    """Return the order in a cancel answer (as the emulator sends it); the docs do not say, so accept anything."""
    from airflow_provider_clearsky.models import TaskOrder

    if isinstance(answer, dict) and any(key.lower() == "taskorderguid" for key in answer):
        try:
            return TaskOrder.model_validate(answer)
        except ValueError:
            return None
    return None
