"""``ClearSkyImageAvailabilityTrigger``: waits in the triggerer until imagery is ready for an area and dates.

What "ready" means, and which requests a poll sends, is :mod:`airflow_provider_clearsky.utils.availability`,
shared with the sensor's poke mode. The sensor's first check (on the worker) is handed to the trigger in its
serialized state (``known_states``), so the trigger starts where the worker stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from airflow_provider_clearsky._compat import TriggerEvent
from airflow_provider_clearsky.exceptions import ClearSkyError
from airflow_provider_clearsky.triggers._base import ClearSkyPollingTrigger
from airflow_provider_clearsky.triggers._polling import (
    FailedChecks,
    is_fatal,
    is_transient,
    seconds_left,
    shared_hook,
)
from airflow_provider_clearsky.utils.availability import AvailabilitySpec, AvailabilityTracker, acheck_once

if TYPE_CHECKING:
    from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook


class ClearSkyImageAvailabilityTrigger(ClearSkyPollingTrigger):
    """Waits until imagery is ready for an area and dates (see :mod:`~airflow_provider_clearsky.utils.availability`).

    Yields exactly one event, a dict with ``status`` (``success``, ``failure``, ``timeout`` or ``error``),
    ``dates`` (ready dates, ISO strings), ``pending`` (dates still pending), ``message`` and, for errors,
    ``retryable``. Triggers of one connection share one connection pool.

    :param spec: :meth:`AvailabilitySpec.to_json` of what to wait for.
    :param clearsky_conn_id: the connection.
    :param deadline: wall-clock deadline (``time.time()`` seconds); a ``timeout`` event fires then.
    :param poll_interval: first seconds between polls (the first poll comes after one interval: the sensor
        has just checked before deferring).
    :param max_poll_interval: cap of the interval as it grows by ``backoff_factor``.
    :param backoff_factor: growth of the interval after each poll (1 = constant).
    :param known_states: what the sensor's check on the worker learnt (:meth:`AvailabilityTracker.states_json`):
        dates known ready or unreachable are never asked about again, and the trigger's first poll asks only
        about the pending ones.
    """

    def __init__(
        self,
        *,
        spec: dict[str, Any],
        clearsky_conn_id: str = "clearsky_default",
        deadline: float | None = None,
        poll_interval: float = 600.0,
        max_poll_interval: float | None = None,
        backoff_factor: float = 1.0,
        known_states: dict[str, str] | None = None,
    ) -> None:
        super().__init__(clearsky_conn_id, deadline, poll_interval, max_poll_interval, backoff_factor)
        self.spec = dict(spec)
        self.known_states = dict(known_states or {})

    def _own_arguments(self) -> dict[str, Any]:
        return {"spec": self.spec, "known_states": self.known_states}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Wait until the imagery is ready, can never be, or the deadline passes; then yield exactly one event."""
        event = await self._wait()
        yield TriggerEvent(event)  # type: ignore[no-untyped-call]

    async def _wait(self) -> dict[str, Any]:
        try:
            tracker = AvailabilityTracker.resume(AvailabilitySpec.from_json(self.spec), self.known_states)
        except (ValueError, KeyError, TypeError) as error:
            return {"status": "error", "dates": [], "pending": [], "message": f"bad spec: {error}", "retryable": False}
        remaining = seconds_left(self.deadline)
        if remaining is not None and remaining <= 0:
            return self._event("timeout", tracker, "timed out before the first check")
        failures = FailedChecks()
        try:
            async with shared_hook(self.clearsky_conn_id) as hook:
                return await asyncio.wait_for(self._watch(hook, tracker, failures), remaining)
        except TimeoutError:
            return self._event(
                "timeout",
                tracker,
                f"timed out waiting for ClearSKY imagery for {tracker.spec.describe()}{failures.note()}",
                last_error=failures.last,
            )
        except ClearSkyError as error:
            return self._event(
                "error", tracker, f"ClearSKY availability check failed: {error}", retryable=not is_fatal(error)
            )
        except Exception as error:
            message = f"ClearSKY availability check failed: {type(error).__name__}: {error}"
            return self._event("error", tracker, message, retryable=True)

    def _event(self, status: str, tracker: AvailabilityTracker, message: str, **extra: Any) -> dict[str, Any]:
        return {
            "status": status,
            "dates": tracker.ready_dates(),
            "pending": tracker.pending_dates(),
            "message": message,
            **extra,
        }

    async def _watch(self, hook: ClearSkyHook, tracker: AvailabilityTracker, failures: FailedChecks) -> dict[str, Any]:
        backoff = self._backoff()
        while True:
            await asyncio.sleep(backoff.advance())
            try:
                outcome = await acheck_once(hook, tracker)
            except ClearSkyError as error:
                if not is_transient(error):
                    raise
                self.log.warning("ClearSKY availability check failed (%s); trying again next interval", error)
                failures.failed(error)  # a timeout names it
                continue
            failures.answered()
            if outcome is not None:
                return self._event(outcome.status, tracker, outcome.message)
            self.log.info(
                "ClearSKY imagery for %s: ready %s, pending %s",
                tracker.spec.describe(),
                tracker.ready_dates() or "none",
                tracker.pending_dates() or "none",
            )
