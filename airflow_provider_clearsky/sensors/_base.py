"""What the ClearSKY sensors share: the three ways to wait, fail-fast rules, and trigger events."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_clearsky._compat import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)
from airflow_provider_clearsky.connection import DEFAULT_CONN_ID
from airflow_provider_clearsky.exceptions import ClearSkyError, ErrorPolicy, RetryableTaskError, error_policy
from airflow_provider_clearsky.triggers._polling import FailedChecks

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.triggers.base import BaseTrigger

    from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook

#: Extra time Airflow's own deferral timeout allows after the trigger's deadline (a backstop only: the
#: trigger fires its own ``timeout`` event first, which names what was awaited).
DEFERRAL_GRACE = dt.timedelta(minutes=5)


class ClearSkyWaitFailed(AirflowFailException):
    """The thing waited for will never happen (order canceled/denied, imagery expired or not ordered).

    Fails the task without retries; ``soft_fail`` turns it into a skip (Airflow's meaning), ``skip_on_timeout``
    does not.
    """


class ClearSkyBaseSensor(BaseSensorOperator):
    """Base of the ClearSKY sensors: poke, reschedule or deferrable, with the same failure rules in every mode.

    Errors are decided by the one error policy (:data:`~airflow_provider_clearsky.exceptions.ERROR_POLICIES`).
    See docs/sensors.md#three-ways-to-wait and docs/sensors.md#failure-behaviour-both-sensors.
    """

    template_fields: Sequence[str] = ("clearsky_conn_id",)
    ui_color = "#c9e4f6"

    def __init__(
        self,
        *,
        clearsky_conn_id: str = DEFAULT_CONN_ID,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poke_interval: float = 300,
        exponential_backoff: bool = True,
        max_wait: dt.timedelta | float | None = dt.timedelta(hours=1),
        skip_on_timeout: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            poke_interval=poke_interval, exponential_backoff=exponential_backoff, max_wait=max_wait, **kwargs
        )
        self.clearsky_conn_id = clearsky_conn_id
        self.deferrable = deferrable
        self.skip_on_timeout = skip_on_timeout
        self._failures = FailedChecks()

    @cached_property
    def hook(self) -> ClearSkyHook:
        """The hook of ``clearsky_conn_id``, made on first use (not at DAG parse)."""
        from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook

        return ClearSkyHook(self.clearsky_conn_id)

    # ------------------------------------------------------------------ for subclasses

    def _trigger(self, deadline: float) -> BaseTrigger:
        raise NotImplementedError

    def _waiting_for(self) -> str:
        """Return what the sensor waits for, for its timeout message."""
        return self.task_id

    def _poll_settings(self) -> dict[str, float]:
        """Trigger arguments ``poll_interval``, ``max_poll_interval`` and ``backoff_factor`` from the sensor's."""
        interval = float(self.poke_interval)
        if not self.exponential_backoff:
            return {"poll_interval": interval, "max_poll_interval": interval, "backoff_factor": 1.0}
        cap = self.max_wait.total_seconds() if self.max_wait else interval * 16
        return {"poll_interval": interval, "max_poll_interval": max(cap, interval), "backoff_factor": 2.0}

    # ------------------------------------------------------------------ waiting

    def execute(self, context: Context) -> Any:
        """Wait in the sensor's mode; return what the last check returns (the XCom value).

        Deferrable: check once here, and defer to the trigger only when the wait is not over.
        """
        if self.deferrable:
            # One check first: no trip through the triggerer when the wait is already over.
            done = self._first_check(context)
            if isinstance(done, PokeReturnValue):
                if done.is_done:
                    return done.xcom_value
            elif done:
                return None
            deadline = time.time() + float(self.timeout)
            self.log.info("Deferring; the triggerer checks every %s s from now on", self.poke_interval)
            self.defer(
                trigger=self._trigger(deadline),
                method_name="execute_complete",
                timeout=dt.timedelta(seconds=float(self.timeout)) + DEFERRAL_GRACE,
            )
        try:
            return super().execute(context)
        except AirflowSensorTimeout as timeout:
            if self.skip_on_timeout:
                raise AirflowSkipException(f"{self._timeout_message()} (skip_on_timeout: skipped)") from timeout
            raise AirflowSensorTimeout(self._timeout_message()) from timeout
        except AirflowSkipException as skip:
            failure = skip.__cause__
            if failure is None:  # Airflow's timeout skip (soft_fail): say what was awaited
                raise AirflowSkipException(f"{self._timeout_message()} (soft_fail: skipped)") from skip
            flag = "soft_fail" if self.soft_fail else "never_fail"
            raise AirflowSkipException(f"{failure} ({flag}: skipped)") from failure  # say what failed

    def _first_check(self, context: Context) -> bool | PokeReturnValue:
        """Run the deferrable mode's check on the worker, failing or skipping as Airflow's poke loop would."""
        try:
            return self.poke(context)
        except AirflowFailException as failure:
            if self.soft_fail or self.never_fail:
                flag = "soft_fail" if self.soft_fail else "never_fail"
                raise AirflowSkipException(f"{failure} ({flag}: skipped)") from failure
            raise

    def _timeout_message(self) -> str:
        """Airflow's timeout, with what was awaited and, when the checks kept failing, their last error."""
        return f"timed out after {float(self.timeout):g} s waiting for {self._waiting_for()}{self._failures.note()}"

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        """Resume as Airflow does (``soft_fail`` skips any failure); ``skip_on_timeout`` skips its backstop timeout."""
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except AirflowSensorTimeout as timeout:  # Airflow's deferral timeout, after the trigger's own deadline
            if self.soft_fail or self.skip_on_timeout:
                raise AirflowSkipException(f"{timeout} (skipped)") from timeout
            raise

    def call_api(self, what: str, call: Any, *args: Any) -> Any:
        """Run one hook call for a check: its result, or None when the error policy waits its error out."""
        try:
            result = call(*args)
        except ClearSkyError as error:
            self.check_failed(what, error)
            return None
        self._failures.answered()
        return result

    def check_failed(self, what: str, error: ClearSkyError) -> None:
        """Wait ``error`` out (logged, and named by a timeout) or fail the try, as the error policy says.

        The message is the trigger's for the same error, so every mode reports it alike.
        """
        policy = error_policy(error, waiting=True)
        if policy is ErrorPolicy.WAIT:
            self.log.warning("%s: %s; trying again at the next check", what, error)
            self._failures.failed(error)
            return
        if policy is ErrorPolicy.RETRY:
            raise RetryableTaskError(f"{what}: {error}") from None
        raise AirflowFailException(f"{what}: {error}") from None

    def finish(self, event: dict[str, Any] | None) -> dict[str, Any]:
        """Turn a trigger event into failure, timeout or success (returns the event on success)."""
        if not event or "status" not in event:
            raise RetryableTaskError(f"unexpected trigger event: {event!r}")
        status = event["status"]
        message = str(event.get("message") or status)
        if status == "success":
            self.log.info("%s", message)
            return event
        if status == "failure":
            raise ClearSkyWaitFailed(message)
        if status == "timeout":
            if self.soft_fail or self.skip_on_timeout:
                flag = "soft_fail" if self.soft_fail else "skip_on_timeout"
                raise AirflowSkipException(f"{message} ({flag}: skipped)")
            raise AirflowSensorTimeout(message)
        if event.get("retryable", True):
            raise RetryableTaskError(message)
        raise AirflowFailException(message)
