"""Moving the bytes: a per-connection cap on concurrent downloads, the paid answer into its writer, progress."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_clearsky._compat import AirflowFailException
from airflow_provider_clearsky.operators import _storage as storage

if TYPE_CHECKING:
    from airflow_provider_clearsky.hooks.download import Download
    from airflow_provider_clearsky.operators._atomic_writer import AtomicWriter
    from airflow_provider_clearsky.operators._download_target import DownloadTarget


class Log(Protocol):
    """What a task's logger offers (``logging.Logger`` or structlog's)."""

    def info(self, event: Any, *args: Any, **kw: Any) -> Any:
        """Log ``event`` (a %-format string) with ``args`` at level INFO."""

    def warning(self, event: Any, *args: Any, **kw: Any) -> Any:
        """Log ``event`` (a %-format string) with ``args`` at level WARNING."""


# One semaphore per (connection id, base URL) for the whole process: however many operators or threads
# download through one connection here, no more than MaxConcurrentConnections are in flight at once.
_SLOTS: dict[tuple[str, str], threading.BoundedSemaphore] = {}
_SLOTS_LOCK = threading.Lock()


def connection_slots(conn_id: str, base_url: str, limit: int) -> threading.BoundedSemaphore:
    """Return the process-wide download semaphore of a connection (sized by the first caller's ``limit``)."""
    with _SLOTS_LOCK:
        key = (conn_id, base_url)
        if key not in _SLOTS:
            _SLOTS[key] = threading.BoundedSemaphore(max(limit, 1))
        return _SLOTS[key]


def human_bytes(count: float) -> str:
    """Return ``count`` bytes for a log line, in B, KiB, MiB or GiB (``"12.3 MiB"``)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"  # pragma: no cover - loop always returns


class Progress:
    """Log download progress, and a summary at the end.

    Bytes received are logged at every ``step_percent`` of ``Content-Length`` or every ``interval`` seconds,
    whichever comes first (only the interval when the length is unknown).
    """

    def __init__(
        self,
        log: Log,
        name: str,
        total: int | None,
        *,
        step_percent: int = 10,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        started: float | None = None,
    ) -> None:
        self.log = log
        self.name = name
        self.total = total
        self.step = step_percent
        self.interval = interval
        self.clock = clock
        self.started = clock() if started is None else started
        self.received = 0
        self._last_time = self.started
        self._next_percent = step_percent

    def update(self, received: int) -> None:
        """Note that ``received`` bytes have arrived in all; log them if a step or the interval is due."""
        self.received = received
        now = self.clock()
        percent = received * 100 // self.total if self.total else None
        due_percent = percent is not None and percent >= self._next_percent and received < (self.total or 0)
        if due_percent or now - self._last_time >= self.interval:
            if percent is not None:
                self.log.info(
                    "%s: %s of %s (%d%%)", self.name, human_bytes(received), human_bytes(self.total or 0), percent
                )
                self._next_percent = (percent // self.step + 1) * self.step
            else:
                self.log.info("%s: %s received", self.name, human_bytes(received))
            self._last_time = now

    @property
    def elapsed(self) -> float:
        """Seconds since the request was sent (never zero, so a rate can be divided by it)."""
        return max(self.clock() - self.started, 1e-9)

    def finish(self) -> None:
        """Log the summary: bytes received, seconds since the request and the mean rate."""
        seconds = self.elapsed
        self.log.info(
            "%s: done, %s (%d bytes) in %.2f s since the request, %s/s",
            self.name,
            human_bytes(self.received),
            self.received,
            seconds,
            human_bytes(self.received / seconds),
        )


def pump(chunks: Iterable[bytes], write: Callable[[bytes], None], progress: Progress) -> int:
    """Copy every chunk to ``write``, reporting progress; returns the byte count."""
    received = 0
    for chunk in chunks:
        write(chunk)
        received += len(chunk)
        progress.update(received)
    return received


def receive(
    download: Download,
    writer: AtomicWriter,
    target: DownloadTarget,
    *,
    chunk_size: int | None,
    log: Log,
    started: float,
) -> None:
    """Stream a paid answer into ``writer`` and check its size against ``Content-Length`` (not committed yet)."""
    assert target.final is not None
    if download.uploaded:
        raise AirflowFailException("the API answered 201 (uploaded) although no upload_url was given")
    total = download.content_length if download.exact_length else None
    storage.check_free_space(target.final.parent, total)
    progress = Progress(log, target.final.name, total, started=started)
    if chunk_size is None:
        writer.write_from(download.readinto, progress.update)
    else:
        pump(download.iter_bytes(chunk_size), writer.write, progress)
    writer.finish(total)
    progress.finish()
