"""The emulator's clock: emulated UTC time that tests move and demos can speed up."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


def _utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


class EmulatorClock:
    """``now() = anchor + (monotonic() - real_anchor) * speed``.

    ``speed`` 1.0 follows real time, 0 freezes the clock, 60 makes one real second one emulated minute.
    The clock never moves backwards on its own; ``set_time`` may move it anywhere.
    """

    def __init__(self, start: datetime | None = None, speed: float = 1.0) -> None:
        if speed < 0:
            raise ValueError("clock speed must be >= 0")
        self._lock = threading.Lock()
        self._speed = speed
        self._anchor = _utc(start) if start is not None else datetime.now(UTC)
        self._real_anchor = time.monotonic()

    def now(self) -> datetime:
        with self._lock:
            elapsed = (time.monotonic() - self._real_anchor) * self._speed
            return self._anchor + timedelta(seconds=elapsed)

    def _rebase(self, new_now: datetime) -> None:
        self._anchor = new_now
        self._real_anchor = time.monotonic()

    def set_time(self, dt: datetime) -> datetime:
        with self._lock:
            self._rebase(_utc(dt))
            return self._anchor

    def advance(self, delta: timedelta) -> datetime:
        now = self.now()
        return self.set_time(now + delta)

    @property
    def speed(self) -> float:
        return self._speed

    def set_speed(self, speed: float) -> None:
        if speed < 0:
            raise ValueError("clock speed must be >= 0")
        now = self.now()
        with self._lock:
            self._rebase(now)
            self._speed = speed
