"""``ClearSkyOrderStatusTrigger``: waits in the triggerer until an order reaches a target status.

When the wait is over is :func:`airflow_provider_clearsky.utils.orders.order_outcome`, shared with the sensor's
poke mode.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from airflow_provider_clearsky._compat import TriggerEvent
from airflow_provider_clearsky.exceptions import ClearSkyError
from airflow_provider_clearsky.triggers._base import ClearSkyPollingTrigger
from airflow_provider_clearsky.triggers._polling import (
    FailedChecks,
    OrderWaiter,
    is_fatal,
    order_subscription,
    seconds_left,
    shared_hook,
)
from airflow_provider_clearsky.utils.orders import ERROR, SUCCESS, TIMEOUT, order_outcome, order_record

if TYPE_CHECKING:
    from airflow_provider_clearsky.models import TaskOrder

#: Seconds the success record's details read may take in the triggerer before the sensor reads them instead.
DETAILS_TIMEOUT = 60.0


class ClearSkyOrderStatusTrigger(ClearSkyPollingTrigger):
    """Waits until order ``order_guid`` reaches one of ``target_statuses`` (default by order type).

    Triggers of one connection in one triggerer share one order-list request per poll interval and one
    connection pool. Yields exactly one event, a dict with ``status`` (``success``, ``failure``, ``timeout``
    or ``error``), ``order_guid``, ``order_status``, ``order`` (the small record on success/failure),
    ``message`` and ``retryable`` (errors only).

    :param order_guid: the order's ``TaskOrderGuid``.
    :param clearsky_conn_id: the connection.
    :param target_statuses: statuses that end the wait; None for the default (Completed/UpToDate).
    :param deadline: wall-clock deadline (``time.time()`` seconds); a ``timeout`` event fires then.
    :param poll_interval: first seconds between polls.
    :param max_poll_interval: cap of the interval as it grows by ``backoff_factor``.
    :param backoff_factor: growth of the interval after each poll (1 = constant).
    :param recurring: whether the order was ordered recurring (decides the default target); None: its ``To``.
    """

    def __init__(
        self,
        *,
        order_guid: str,
        clearsky_conn_id: str = "clearsky_default",
        target_statuses: list[str] | None = None,
        deadline: float | None = None,
        poll_interval: float = 300.0,
        max_poll_interval: float | None = None,
        backoff_factor: float = 1.0,
        recurring: bool | None = None,
    ) -> None:
        super().__init__(clearsky_conn_id, deadline, poll_interval, max_poll_interval, backoff_factor)
        self.recurring = recurring
        self.order_guid = order_guid
        self.target_statuses = list(target_statuses) if target_statuses else None

    def _own_arguments(self) -> dict[str, Any]:
        return {"order_guid": self.order_guid, "target_statuses": self.target_statuses, "recurring": self.recurring}

    def _event(self, status: str, message: str, order: TaskOrder | None = None, **extra: Any) -> dict[str, Any]:
        return {
            "status": status,
            "order_guid": self.order_guid,
            "order_status": order.status if order is not None else None,
            "order": order_record(order) if order is not None else None,
            "message": message,
            **extra,
        }

    def _timeout_event(self, last: TaskOrder | None, failures: FailedChecks | None = None) -> dict[str, Any]:
        seen = f"; last status {last.status}" if last is not None else ""
        failed = failures.note() if failures is not None else ""
        return self._event(
            TIMEOUT,
            f"timed out waiting for ClearSKY order {self.order_guid}{seen}{failed}",
            last,
            retryable=False,
            last_error=failures.last if failures is not None else None,
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Wait for the order's target status, failure or the deadline, then yield exactly one event."""
        # The subscription is released before the event is yielded, so nothing is left behind whatever the
        # triggerer does with the generator afterwards.
        event = await self._wait()
        yield TriggerEvent(event)  # type: ignore[no-untyped-call]

    async def _wait(self) -> dict[str, Any]:
        remaining = seconds_left(self.deadline)
        if remaining is not None and remaining <= 0:
            return self._timeout_event(None)
        backoff = self._backoff()
        waiter = OrderWaiter(self.order_guid, backoff)
        seen: list[TaskOrder] = []
        try:
            async with order_subscription(self.clearsky_conn_id, waiter):
                event = await asyncio.wait_for(self._watch(waiter, seen), remaining)
        except TimeoutError:
            return self._timeout_event(seen[-1] if seen else None, waiter.failures)
        except ClearSkyError as error:
            return self._event(ERROR, f"ClearSKY order {self.order_guid}: {error}", retryable=not is_fatal(error))
        except Exception as error:
            return self._event(
                ERROR, f"ClearSKY order {self.order_guid}: {type(error).__name__}: {error}", retryable=True
            )
        if event["status"] == SUCCESS:  # after the deadline's bound: a done order is never reported late
            await self._with_details(event)
        return event

    async def _watch(self, waiter: OrderWaiter, seen: list[TaskOrder]) -> dict[str, Any]:
        started = time.monotonic()
        while True:
            order = await waiter.next()
            if not seen or seen[-1].status != order.status:
                self.log.info(
                    "ClearSKY order %s is %s (after %.0f s)",
                    self.order_guid,
                    order.status or "?",
                    time.monotonic() - started,
                )
            seen[:] = [order]
            outcome = order_outcome(order, self.target_statuses, self.recurring)
            if outcome is not None:
                status, message = outcome
                return self._event(status, message, order)

    async def _with_details(self, event: dict[str, Any]) -> None:
        """Make the success record the order's details, as the sensor's own check reads them.

        The shared poll reads the order list, which may leave out fields of the details (attribution notices
        that downloads given the record copy to their sidecars): one request per finished wait. When it fails,
        ``details_read`` is False and the sensor reads them in the worker.
        """
        try:
            async with shared_hook(self.clearsky_conn_id) as hook:
                order = await asyncio.wait_for(hook.aget_order(self.order_guid), DETAILS_TIMEOUT)
        except (ClearSkyError, TimeoutError) as error:
            self.log.warning("ClearSKY order %s: its details could not be read (%s)", self.order_guid, error)
            event["details_read"] = False
            return
        event["order"] = order_record(order)
        event["details_read"] = True
