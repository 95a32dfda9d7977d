"""``ClearSkyOrderStatusSensor``: wait until a ClearSKY order reaches a target status."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_clearsky import records
from airflow_provider_clearsky._compat import AirflowFailException, PokeReturnValue
from airflow_provider_clearsky.exceptions import ClearSkyError
from airflow_provider_clearsky.links import ClearSkyOrderLink
from airflow_provider_clearsky.sensors._base import ClearSkyBaseSensor, ClearSkyWaitFailed
from airflow_provider_clearsky.utils.coercion import as_list, is_blank_text
from airflow_provider_clearsky.utils.orders import FAILURE, SUCCESS, order_outcome, order_record

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_clearsky.triggers.order_status import ClearSkyOrderStatusTrigger


class ClearSkyOrderStatusSensor(ClearSkyBaseSensor):
    """Waits until a ClearSKY order reaches a target status; returns the order as small JSON.

    A canceled or denied order fails the task at once, without retries. Deferred sensors of one connection
    share one order-list request per poll interval. See docs/sensors.md#clearskyorderstatussensor.

    :param order_guid: the order's GUID (templated), e.g. ``{{ ti.xcom_pull(task_ids='create_order') }}``
        (the create operator returns the GUID).
    :param target_statuses: statuses that end the wait (templated); default Completed/UpToDate by order type.
    :param recurring: whether the order was ordered recurring (templated; True/False, or None to read ``To``).
    :param clearsky_conn_id: the ClearSKY connection.
    :param deferrable: wait in the triggerer (default ``[operators] default_deferrable``).
    :param poke_interval: seconds between checks at first (default 300); grows with ``exponential_backoff``
        up to ``max_wait`` (default one hour).
    :param timeout: seconds before giving up (Airflow's sensor ``timeout``); with ``soft_fail`` (any failure)
        or ``skip_on_timeout`` (the timeout only) the task is then skipped.

    Returns (XCom) the order record: ``TaskOrderGuid``, ``OrderingProcessStatus``, ``Model``, ``From``,
    ``To``, ``SatelliteConstellations``, ``ImageFrequency``, ``ReferenceDate``, ``StorageMonths``, ...
    """

    template_fields: Sequence[str] = (*ClearSkyBaseSensor.template_fields, "order_guid", "target_statuses", "recurring")
    operator_extra_links = (ClearSkyOrderLink(),)

    def __init__(
        self,
        *,
        order_guid: str,
        target_statuses: Collection[str] | str | None = None,
        recurring: bool | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.order_guid = order_guid
        self.target_statuses = target_statuses
        self.recurring = recurring
        self._last_status: str | None = None
        self._link_saved = False

    def _guid(self) -> str:
        from airflow_provider_clearsky.models.orders import order_guid

        try:
            return order_guid(self.order_guid)
        except ValueError as error:
            raise AirflowFailException(str(error)) from None

    def _targets(self) -> list[str] | None:
        try:
            targets = as_list(self.target_statuses)
        except (ValueError, SyntaxError):
            raise AirflowFailException(
                f"target_statuses must be a list of statuses such as ['Completed'], got {self.target_statuses!r}"
            ) from None
        return [str(status).strip() for status in targets if str(status).strip()] if targets else None

    def _recurring(self) -> bool | None:
        value = self.recurring
        if value is None or is_blank_text(value):
            return None
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        raise AirflowFailException(f"recurring must be True, False or None, got {value!r}")

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """Check once: the order record when it reached a target status, False while not; fail if it never will."""
        guid = self._guid()
        targets = self._targets()  # both checked before any request
        if not self._link_saved:  # at the first check, so a failed or timed-out wait shows it too
            ClearSkyOrderLink.persist(context, self.hook.settings.order_url(guid))
            self._link_saved = True
        targets = self._targets()  # all checked before any request
        recurring = self._recurring()
        order = self.call_api(f"ClearSKY order {guid}", self.hook.get_order, guid)  # the trigger says it so
        if order is None:
            return False
        self._last_status = order.status
        outcome = order_outcome(order, targets, recurring)
        if outcome is None:
            self.log.info("ClearSKY order %s is %s; waiting", guid, order.status)
            return False
        status, message = outcome
        if status == FAILURE:
            raise ClearSkyWaitFailed(message)
        assert status == SUCCESS
        self.log.info("%s (%s)", message, self.hook.settings.order_url(order.guid))
        records.push(context, "status", self.clearsky_conn_id, order.guid, status=order.status)
        return PokeReturnValue(is_done=True, xcom_value=order_record(order))

    def _waiting_for(self) -> str:
        status = f" (last status {self._last_status})" if self._last_status else ""
        return f"ClearSKY order {self.order_guid}{status}"

    def _trigger(self, deadline: float) -> ClearSkyOrderStatusTrigger:
        from airflow_provider_clearsky.triggers.order_status import ClearSkyOrderStatusTrigger  # at defer time

        return ClearSkyOrderStatusTrigger(
            order_guid=self._guid(),
            clearsky_conn_id=self.clearsky_conn_id,
            target_statuses=self._targets(),
            recurring=self._recurring(),
            deadline=deadline,
            **self._poll_settings(),
        )

    def _details_record(self, listed: Any) -> Any:
        """Return the record of the order's details, or ``listed`` (with a warning) when they cannot be read."""
        guid = self._guid()
        try:
            return order_record(self.hook.get_order(guid))
        except ClearSkyError as error:
            self.log.warning(
                "ClearSKY order %s is done, but its details could not be read (%s): the record "
                "is the order list's, which may lack attribution notices",
                guid,
                error,
            )
            return listed

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Return the order record from the trigger's ``event`` (runs on a fresh instance when the trigger fires)."""
        event = self.finish(event)
        order = event.get("order")
        if event.get("details_read") is False:  # the triggerer could not read them: the record is the listed order
            order = self._details_record(order)
        if isinstance(order, dict):
            guid = order.get("TaskOrderGuid") or self.order_guid
            records.push(context, "status", self.clearsky_conn_id, guid, status=order.get("OrderingProcessStatus"))
        return order
