"""Polling machinery shared by the ClearSKY triggers: backoff, deadlines, error kinds, and sharing.

Inside one triggerer, the triggers of a connection share one connection pool (:func:`shared_hook`) and one
order-list request per poll interval (:class:`OrderPoller`); all state is kept per event loop, and nothing
here blocks it. See docs/sensors.md#shared-polling.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from airflow_provider_clearsky.exceptions import ClearSkyError, ErrorPolicy, NotFoundError, error_policy

if TYPE_CHECKING:
    from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook
    from airflow_provider_clearsky.models import TaskOrder

log = logging.getLogger(__name__)

#: How long a new poller waits for other triggers to register before its first request (coalescing).
COALESCE_SECONDS = 0.05


def is_transient(error: BaseException) -> bool:
    """Tell whether the error policy waits ``error`` out (429, 5xx, timeouts, dropped connections...)."""
    return error_policy(error, waiting=True) is ErrorPolicy.WAIT


def is_fatal(error: BaseException) -> bool:
    """Tell whether the error policy fails the wait at once, without task retries."""
    return error_policy(error, waiting=True) is ErrorPolicy.FAIL


@dataclass
class FailedChecks:
    """The checks that failed transiently since the last one that got an answer: what a timeout names."""

    count: int = 0
    last: str | None = None

    def failed(self, error: BaseException) -> None:
        """Count one more failed check, remembering ``error`` as the last."""
        self.count += 1
        self.last = str(error) or type(error).__name__

    def answered(self) -> None:
        """Forget the failures: a check got an answer."""
        self.count, self.last = 0, None

    def note(self) -> str:
        """Return what a timeout message adds (empty if no check failed).

        For example ``; the last 20 checks failed: [GET /api/tasking/orders, HTTP 503] ...``.
        """
        if not self.count:
            return ""
        checks = "the last check" if self.count == 1 else f"the last {self.count} checks"
        return (
            f"; {checks} failed: {self.last} (temporary API errors are waited out; check the ClearSKY service "
            "and the connection)"
        )


def seconds_left(deadline: float | None) -> float | None:
    """Return the seconds until a wall-clock deadline (``time.time()`` epoch), or None when there is none."""
    if deadline is None:
        return None
    return deadline - time.time()


@dataclass
class Backoff:
    """A poll interval that grows by ``factor`` after each poll, capped at ``maximum``."""

    initial: float
    factor: float = 1.0
    maximum: float | None = None
    current: float = field(init=False)

    def __post_init__(self) -> None:
        if self.initial <= 0:
            raise ValueError("poll interval must be positive")
        if self.factor < 1:
            raise ValueError("backoff factor must be at least 1")
        self.maximum = max(self.maximum if self.maximum is not None else self.initial, self.initial)
        self.current = self.initial

    def advance(self) -> float:
        """Return the interval to wait now; the next one grows."""
        value = self.current
        assert self.maximum is not None
        self.current = min(self.current * self.factor, self.maximum)
        return value


# --------------------------------------------------------------------------------------------- hook sharing

HookFactory = Callable[[str], "ClearSkyHook"]


def _default_hook_factory(conn_id: str) -> ClearSkyHook:
    from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook

    return ClearSkyHook(conn_id)


#: How triggers build hooks. Tests replace it to plug in an ``httpx.MockTransport``.
hook_factory: HookFactory = _default_hook_factory


@dataclass
class _SharedHook:
    hook: ClearSkyHook
    users: int = 0


@dataclass
class _LoopState:
    hooks: dict[str, _SharedHook] = field(default_factory=dict)
    pollers: dict[str, OrderPoller] = field(default_factory=dict)


_loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = weakref.WeakKeyDictionary()


def _loop_state() -> _LoopState:
    loop = asyncio.get_running_loop()
    state = _loops.get(loop)
    if state is None:
        state = _loops[loop] = _LoopState()
    return state


@asynccontextmanager
async def shared_hook(conn_id: str) -> AsyncIterator[ClearSkyHook]:
    """Yield the connection's hook shared by every trigger of this event loop; closed after its last user."""
    state = _loop_state()
    entry = state.hooks.get(conn_id)
    if entry is None:
        entry = state.hooks[conn_id] = _SharedHook(hook_factory(conn_id))
    entry.users += 1
    try:
        yield entry.hook
    finally:
        entry.users -= 1
        if entry.users == 0 and state.hooks.get(conn_id) is entry:
            del state.hooks[conn_id]
            # Shielded: a second cancellation while closing must not leak the pool.
            await asyncio.shield(entry.hook.aclose())


def active_clients() -> int:
    """Return the number of shared hooks open in this event loop (tests and the benchmark check for leaks)."""
    state = _loops.get(asyncio.get_running_loop())
    return len(state.hooks) if state else 0


def active_pollers() -> int:
    """Return the number of order pollers running in this event loop (tests and the benchmark check for leaks)."""
    state = _loops.get(asyncio.get_running_loop())
    return len(state.pollers) if state else 0


# --------------------------------------------------------------------------------------------- order polling


class OrderWaiter:
    """One trigger's interest in one order. Holds only the latest answer, so memory stays flat."""

    __slots__ = ("_event", "_result", "backoff", "failures", "guid")

    def __init__(self, guid: str, backoff: Backoff) -> None:
        self.guid = guid.strip().lower()
        self.backoff = backoff
        self.failures = FailedChecks()
        self._event = asyncio.Event()
        self._result: TaskOrder | BaseException | None = None

    def deliver(self, result: TaskOrder | BaseException) -> None:
        """Hand the waiter the order as of this poll, or the error that ends its wait, and wake it."""
        if not isinstance(result, BaseException):
            self.failures.answered()
        self._result = result
        self._event.set()

    async def next(self) -> TaskOrder:
        """Return the order as of the next poll; raise the poll's error when it cannot go on."""
        await self._event.wait()
        self._event.clear()
        result, self._result = self._result, None
        if isinstance(result, BaseException):
            raise result
        assert result is not None
        return result


class OrderPoller:
    """Polls the orders of one connection for all waiters: one ``alist_orders`` per interval.

    The cadence is the shortest current interval among the waiters, counted from the previous request, so
    a connection sees at most one list request per interval however many triggers wait. Orders missing
    from the list (for example expired ones) are fetched together in one order-details request.
    """

    def __init__(self, conn_id: str, state: _LoopState) -> None:
        self.conn_id = conn_id
        self._state = state
        self._waiters: set[OrderWaiter] = set()
        self._wake = asyncio.Event()
        self._last_request: float | None = None
        self._first_due = asyncio.get_running_loop().time() + COALESCE_SECONDS
        self._task: asyncio.Task[None] | None = None
        self.requests = 0

    @property
    def waiters(self) -> int:
        """The number of waiters the poller serves now."""
        return len(self._waiters)

    def add(self, waiter: OrderWaiter) -> None:
        """Serve ``waiter`` from the next poll on, starting the polling task if it is not running."""
        self._waiters.add(waiter)
        self._wake.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"clearsky-order-poller-{self.conn_id}"
            )

    def remove(self, waiter: OrderWaiter) -> None:
        """Stop serving ``waiter``; the polling task ends once nobody is left."""
        self._waiters.discard(waiter)
        self._wake.set()  # the loop notices it has nobody left and stops

    def _delay(self, now: float) -> float:
        if self._last_request is None:
            return self._first_due - now
        interval = min(waiter.backoff.current for waiter in self._waiters)
        return self._last_request + interval - now

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with shared_hook(self.conn_id) as hook:
                while True:
                    if not self._waiters:
                        # Unregister before any await, so a trigger arriving now starts a fresh poller.
                        self._unregister()
                        break
                    delay = self._delay(loop.time())
                    if delay > 0.001:
                        self._wake.clear()
                        with suppress(asyncio.TimeoutError):
                            await asyncio.wait_for(self._wake.wait(), delay)
                        continue
                    await self._poll(hook)
        except Exception as error:  # never leave waiters hanging on a bug
            log.exception("ClearSKY order poller for %s stopped", self.conn_id)
            for waiter in list(self._waiters):
                waiter.deliver(error)
        finally:
            self._unregister()

    def _unregister(self) -> None:
        if self._state.pollers.get(self.conn_id) is self:
            del self._state.pollers[self.conn_id]

    async def _poll(self, hook: ClearSkyHook) -> None:
        self._last_request = asyncio.get_running_loop().time()
        waiters = list(self._waiters)
        self.requests += 1
        try:
            orders = await hook.alist_orders()
        except ClearSkyError as error:
            self._failed(waiters, error)
            return
        by_guid = {order.guid.lower(): order for order in orders}
        missing: list[OrderWaiter] = []
        for waiter in waiters:
            found = by_guid.get(waiter.guid)
            if found is not None:
                waiter.deliver(found)
            else:
                missing.append(waiter)
        if missing:
            await self._poll_missing(hook, missing)
        for waiter in waiters:
            waiter.backoff.advance()

    async def _poll_missing(self, hook: ClearSkyHook, waiters: list[OrderWaiter]) -> None:
        """Orders not in the list: one details request for all, one each only if some GUID is unknown."""
        guids = sorted({waiter.guid for waiter in waiters})
        self.requests += 1
        try:
            details = {order.guid.lower(): order for order in await hook.aget_order_details(guids)}
        except NotFoundError:
            if len(guids) == 1:
                self._failed(waiters, NotFoundError(f"no order {guids[0]} on this account", status_code=404))
                return
            details = {}  # some GUID is unknown: ask for each, so only its own trigger fails
        except ClearSkyError as error:
            self._failed(waiters, error)
            return
        for waiter in waiters:
            if waiter.guid in details:
                waiter.deliver(details[waiter.guid])
                continue
            self.requests += 1
            try:
                waiter.deliver(await hook.aget_order(waiter.guid))
            except ClearSkyError as error:
                self._failed([waiter], error)

    def _failed(self, waiters: list[OrderWaiter], error: ClearSkyError) -> None:
        if is_transient(error):
            log.warning("ClearSKY order poll for %s failed (%s); trying again next interval", self.conn_id, error)
            for waiter in waiters:
                waiter.failures.failed(error)  # a timeout names it
            return
        for waiter in waiters:
            waiter.deliver(error)


@asynccontextmanager
async def order_subscription(conn_id: str, waiter: OrderWaiter) -> AsyncIterator[OrderPoller]:
    """Register ``waiter`` with the connection's poller for the duration of the block (even if cancelled)."""
    state = _loop_state()
    poller = state.pollers.get(conn_id)
    if poller is None:
        poller = state.pollers[conn_id] = OrderPoller(conn_id, state)
    poller.add(waiter)
    try:
        yield poller
    finally:
        poller.remove(waiter)
