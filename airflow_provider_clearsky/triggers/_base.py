"""What every ClearSKY trigger has: its connection, its deadline, how often it polls, and how it serializes."""

from __future__ import annotations

from typing import Any

from airflow_provider_clearsky._compat import BaseTrigger
from airflow_provider_clearsky.triggers._polling import Backoff


class ClearSkyPollingTrigger(BaseTrigger):
    """Base of the ClearSKY triggers: the polling settings every one of them takes and serializes.

    :param clearsky_conn_id: the connection.
    :param deadline: wall-clock deadline (``time.time()`` seconds); a ``timeout`` event fires then.
    :param poll_interval: first seconds between polls.
    :param max_poll_interval: cap of the interval as it grows by ``backoff_factor``.
    :param backoff_factor: growth of the interval after each poll (1 = constant).
    """

    def __init__(
        self,
        clearsky_conn_id: str,
        deadline: float | None,
        poll_interval: float,
        max_poll_interval: float | None,
        backoff_factor: float,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.clearsky_conn_id = clearsky_conn_id
        self.deadline = deadline
        self.poll_interval = float(poll_interval)
        self.max_poll_interval = float(max_poll_interval) if max_poll_interval is not None else None
        self.backoff_factor = float(backoff_factor)

    def _own_arguments(self) -> dict[str, Any]:
        """Return the arguments of the subclass itself (beyond the polling settings), as JSON."""
        raise NotImplementedError

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the class path and the arguments that rebuild this trigger in the triggerer."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                **self._own_arguments(),
                "clearsky_conn_id": self.clearsky_conn_id,
                "deadline": self.deadline,
                "poll_interval": self.poll_interval,
                "max_poll_interval": self.max_poll_interval,
                "backoff_factor": self.backoff_factor,
            },
        )

    def _backoff(self) -> Backoff:
        return Backoff(self.poll_interval, self.backoff_factor, self.max_poll_interval)
