"""``ClearSkyImageAvailabilityTrigger``: waits in the triggerer until imagery is ready for an area and dates.

Also home of the readiness rules shared with the sensor's poke mode: :class:`AvailabilitySpec` (what is
waited for, as primitives), :class:`AvailabilityTracker` (what each date is known to be) and the two
drivers :func:`check_once` (sync hook) and :func:`acheck_once` (async hook).

Readiness (contract §10) is ``CompositeAvailability.is_ready(allow_partial)`` per date, asked with the same
model, constellations, EPSG, bands and UTM mode as the download. Each date is in one of these states:

* ``ready``: ready to download.
* ``pending``: not yet (not produced, or still processing): keep waiting.
* ``not_covered``: no order covers the area (``OrdersCoverPolygon`` false, or error 1006).
* ``not_scheduled``: an order covers the area but none produces an image on that date
  (``DataOnZoneDataFrequencyDate`` false).
* ``expired``: the date's imagery is outside its storage period (``AnyImageWithinStorageMonths`` false).

With explicit ``dates`` every date counts: in ``all`` mode one unreachable date (not covered, not
scheduled, expired) fails the wait; in ``any`` mode the wait fails only when no date can become ready.
With a window (``date_from``..``date_to``) the dates that count are the window's image dates: days no
order schedules are ignored, and the wait fails when the window has no image date at all (or no order
covers the area), and in ``all`` mode when an image date has expired.

Requests, cheapest first. A window's first pass lists the caller's orders once (``GET /api/tasking/orders``) and
works out each order's image dates from its ``ReferenceDate``/``ImageFrequency`` (the contract: ``d`` is an
image date iff ``(d - ReferenceDate) % ImageFrequency == 0`` within ``From``..``To``): days no order of the
model over the area schedules are ``not_scheduled`` without asking, and only the remaining days get a
``composite/available`` check. (When an order's schedule or area is unknown, e.g. a tile order, every day is
asked, as before.) After that one pass, each poll asks ``search/available`` once for the window and checks
again only the pending dates it lists. Ready, not scheduled, not covered and expired are final: never asked
again. The sensor's first check (on the worker) is handed to the trigger in its serialized state
(``known_states``), so the trigger starts where the worker stopped.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_clearsky._compat import BaseTrigger, TriggerEvent
from airflow_provider_clearsky.exceptions import ClearSkyError, NoImageryError, NotCoveredByOrderError

if TYPE_CHECKING:
    from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook
    from airflow_provider_clearsky.models import (
        AvailableDatesRequest,
        CompositeAvailability,
        ImageryRequest,
        TaskOrder,
    )
from airflow_provider_clearsky.triggers._polling import (
    Backoff,
    FailedChecks,
    is_fatal,
    is_transient,
    seconds_left,
    shared_hook,
)
from airflow_provider_clearsky.utils.coercion import parse_day

READY = "ready"
PENDING = "pending"
NOT_COVERED = "not_covered"
NOT_SCHEDULED = "not_scheduled"
EXPIRED = "expired"
UNREACHABLE = (NOT_COVERED, NOT_SCHEDULED, EXPIRED)

ALL = "all"
ANY = "any"

#: The longest window a sensor may watch (each day is checked once per wait).
MAX_WINDOW_DAYS = 366

_REASONS = {
    NOT_COVERED: "no order covers the area with these settings (order it first)",
    NOT_SCHEDULED: "no order covering the area produces an image on this date (check ImageFrequency/ReferenceDate)",
    EXPIRED: "the imagery is outside its storage period (order StorageMonths to keep it longer)",
}


def classify(availability: CompositeAvailability, allow_partial: bool) -> str:
    """One date's state from its ``composite/available`` flags."""
    if availability.is_ready(allow_partial):
        return READY
    if not availability.orders_cover_polygon:
        return NOT_COVERED
    if availability.data_on_zone_data_frequency_date is False:
        return NOT_SCHEDULED
    if availability.is_expired:
        return EXPIRED
    return PENDING


@dataclass(frozen=True)
class AvailabilitySpec:
    """What an availability wait is for, in primitives (the trigger's serialized form)."""

    wkt: str
    dates: tuple[dt.date, ...] | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    model: str = "Stratus2"
    satellite_constellations: tuple[str, ...] = ("Sentinel1", "Sentinel2", "Landsat89")
    epsg_projection: int = 47000
    bandnames: str = "all"
    utm_data_selection_mode: str = "combined_utm"
    allow_partial: bool = False
    ready_when: str = ALL

    def __post_init__(self) -> None:
        if self.ready_when not in (ALL, ANY):
            raise ValueError(f"ready_when must be 'all' or 'any', got {self.ready_when!r}")
        if (self.dates is None) == (self.date_from is None or self.date_to is None):
            raise ValueError("give either dates, or both date_from and date_to")
        if self.dates is not None and not self.dates:
            raise ValueError("dates is empty; pass at least one date (YYYY-MM-DD)")
        if self.date_from is not None and self.date_to is not None:
            if self.date_to < self.date_from:
                raise ValueError(f"date_to ({self.date_to}) is before date_from ({self.date_from}); swap them")
            if (self.date_to - self.date_from).days + 1 > MAX_WINDOW_DAYS:
                raise ValueError(f"the window is longer than {MAX_WINDOW_DAYS} days; wait on one month at a time")

    @property
    def is_window(self) -> bool:
        """Tell whether the wait is for a window (``date_from``/``date_to``) rather than listed dates."""
        return self.dates is None

    def days(self) -> list[dt.date]:
        """Return the dates to wait for: the given ones, or every day of the window."""
        if self.dates is not None:
            return sorted(set(self.dates))
        assert self.date_from is not None
        assert self.date_to is not None
        count = (self.date_to - self.date_from).days + 1
        return [self.date_from + dt.timedelta(days=offset) for offset in range(count)]

    def request(self, day: dt.date | None = None) -> ImageryRequest:
        """Return the ``composite/available`` request for ``day`` (raises InvalidRequestError on bad settings)."""
        from airflow_provider_clearsky.models import ImageryRequest

        return ImageryRequest(
            wkt=self.wkt,
            date=day or self.days()[0],
            model=self.model,
            satellite_constellations=list(self.satellite_constellations),
            epsg_projection=self.epsg_projection,
            bandnames=self.bandnames,
            utm_data_selection_mode=self.utm_data_selection_mode,
            allow_partial_image=self.allow_partial,
        )

    def search_request(self) -> AvailableDatesRequest:
        """Return the ``search/available`` request that lists the window's produced dates."""
        from airflow_provider_clearsky.models import AvailableDatesRequest

        days = self.days()
        return AvailableDatesRequest(wkt=self.wkt, date_from=days[0], until=days[-1])

    def describe(self) -> str:
        """Return the dates (or window) and settings, for log lines and messages."""
        what = ", ".join(day.isoformat() for day in self.days()) if self.dates else f"{self.date_from}..{self.date_to}"
        return f"{what} ({self.model}, {'/'.join(self.satellite_constellations)})"

    def to_json(self) -> dict[str, Any]:
        """Return the spec as JSON, to cross into the triggerer."""
        return {
            "wkt": self.wkt,
            "dates": [day.isoformat() for day in self.dates] if self.dates is not None else None,
            "date_from": self.date_from.isoformat() if self.date_from else None,
            "date_to": self.date_to.isoformat() if self.date_to else None,
            "model": self.model,
            "satellite_constellations": list(self.satellite_constellations),
            "epsg_projection": self.epsg_projection,
            "bandnames": self.bandnames,
            "utm_data_selection_mode": self.utm_data_selection_mode,
            "allow_partial": self.allow_partial,
            "ready_when": self.ready_when,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AvailabilitySpec:
        """Rebuild a spec from :meth:`to_json`'s output."""
        dates = data.get("dates")
        return cls(
            wkt=data["wkt"],
            dates=tuple(parse_day(day, "dates") for day in dates) if dates is not None else None,
            date_from=parse_day(data["date_from"], "date_from") if data.get("date_from") else None,
            date_to=parse_day(data["date_to"], "date_to") if data.get("date_to") else None,
            model=data.get("model", "Stratus2"),
            satellite_constellations=tuple(data.get("satellite_constellations") or ()),
            epsg_projection=int(data.get("epsg_projection", 47000)),
            bandnames=data.get("bandnames", "all"),
            utm_data_selection_mode=data.get("utm_data_selection_mode", "combined_utm"),
            allow_partial=bool(data.get("allow_partial", False)),
            ready_when=data.get("ready_when", ALL),
        )


@dataclass(frozen=True)
class Outcome:
    """How a wait ended: ``success`` with the ready dates, or ``failure`` saying why it never can."""

    status: str  # "success" or "failure"
    message: str
    dates: list[str]


@dataclass
class AvailabilityTracker:
    """What each date of a wait is known to be; decides when the wait is over."""

    spec: AvailabilitySpec
    states: dict[dt.date, str] = field(default_factory=dict)

    @property
    def probed(self) -> bool:
        """Whether every date has been checked at least once."""
        return all(day in self.states for day in self.spec.days())

    def needs_search(self) -> bool:
        """Tell whether to list produced dates through one ``search/available`` first.

        After the first full pass it tells which pending dates of a window (or of several given dates) have
        been produced; not with ``allow_partial`` (a partial image may be ready before the whole area is listed).
        """
        if not self.probed or self.spec.allow_partial:
            return False
        return self.spec.is_window or len(self.dates_in(PENDING)) > 1

    def to_check(self, produced: Iterable[dt.date] | None = None) -> list[dt.date]:
        """Return the dates to check now: every unchecked one first, then the pending (produced ones, if known)."""
        days = self.spec.days()
        if not self.probed:
            return [day for day in days if day not in self.states]
        pending = [day for day in days if self.states[day] == PENDING]
        if produced is None:
            return pending
        listed = set(produced)
        return [day for day in pending if day in listed]

    def record(self, day: dt.date, state: str) -> None:
        """Record the state a check found for ``day``."""
        self.states[day] = state

    def skip_unscheduled(self, scheduled: set[dt.date] | None) -> None:
        """Days no order schedules are ``not_scheduled`` without a request (``None``: schedule unknown)."""
        if scheduled is None:
            return
        for day in self.spec.days():
            if day not in self.states and day not in scheduled:
                self.states[day] = NOT_SCHEDULED

    def needs_schedule(self) -> bool:
        """Tell whether this is a window's first pass, where one list of the orders spares many requests.

        The list spares a request for each day no order schedules (given dates are asked about directly: they
        are usually image dates).
        """
        return self.spec.is_window and not self.states

    def states_json(self) -> dict[str, str]:
        """Return what is known so far, for the trigger's serialized state."""
        return {day.isoformat(): state for day, state in sorted(self.states.items())}

    @classmethod
    def resume(cls, spec: AvailabilitySpec, known: dict[str, str] | None) -> AvailabilityTracker:
        """Return a tracker that starts from ``states_json()`` of an earlier check (unknown entries dropped)."""
        tracker = cls(spec)
        days = set(spec.days())
        for text, state in (known or {}).items():
            day = parse_day(text, "known_states")
            if day in days and state in (READY, PENDING, *UNREACHABLE):
                tracker.states[day] = state
        return tracker

    def dates_in(self, *states: str) -> list[dt.date]:
        """Return the dates in any of ``states``, in order."""
        return [day for day in self.spec.days() if self.states.get(day) in states]

    def ready_dates(self) -> list[str]:
        """Return the ready dates as ISO strings."""
        return [day.isoformat() for day in self.dates_in(READY)]

    def pending_dates(self) -> list[str]:
        """Return the dates still awaited, as ISO strings."""
        return [day.isoformat() for day in self.spec.days() if self.states.get(day, PENDING) == PENDING]

    def _unreachable_text(self, days: list[dt.date]) -> str:
        return "; ".join(f"{day}: {_REASONS[self.states[day]]}" for day in days)

    def outcome(self) -> Outcome | None:
        """Success (with the ready dates), failure (with why), or None to keep waiting."""
        spec = self.spec
        if not self.probed:
            return None
        ready = self.ready_dates()
        if spec.is_window:
            expected = self.dates_in(READY, PENDING, EXPIRED)
            if not expected:
                covered = self.dates_in(NOT_SCHEDULED)
                why = (
                    "no order covering the area produces an image in this window" if covered else _REASONS[NOT_COVERED]
                )
                return Outcome("failure", f"No ClearSKY imagery can become ready for {spec.describe()}: {why}", [])
            reachable = [day for day in expected if self.states[day] != EXPIRED]
        else:
            expected = spec.days()
            reachable = [day for day in expected if self.states[day] not in UNREACHABLE]
        unreachable = [day for day in expected if day not in reachable]
        if spec.ready_when == ALL:
            if unreachable:
                return Outcome(
                    "failure",
                    f"ClearSKY imagery for {spec.describe()} will never be ready for every date: "
                    f"{self._unreachable_text(unreachable)}",
                    ready,
                )
            if len(ready) == len(expected):
                return Outcome("success", f"ClearSKY imagery is ready for {', '.join(ready)}", ready)
            return None
        if ready:
            return Outcome("success", f"ClearSKY imagery is ready for {', '.join(ready)}", ready)
        if not reachable:
            return Outcome(
                "failure",
                f"No ClearSKY imagery can become ready for {spec.describe()}: {self._unreachable_text(unreachable)}",
                [],
            )
        return None


def _state_of_error(error: ClearSkyError) -> str | None:
    if isinstance(error, NotCoveredByOrderError):
        return NOT_COVERED
    if isinstance(error, NoImageryError):
        return PENDING
    return None


def scheduled_days(orders: Iterable[TaskOrder], spec: AvailabilitySpec) -> set[dt.date] | None:
    """Return the days of ``spec`` that some order of its model over its area schedules an image for.

    ``None`` when that cannot be told from the orders (none of the model covers the area, or one lacks its
    area, cadence or reference date): then every day is asked. Orders of every status count, so the set is
    never smaller than the truth; the per-date check decides what each of these days is.
    """
    import shapely

    try:
        area = shapely.from_wkt(spec.wkt)
    except shapely.errors.ShapelyError:
        return None
    days = spec.days()
    scheduled: set[dt.date] = set()
    relevant = 0
    for order in orders:
        if (order.model or "").lower() != spec.model.lower():
            continue
        if order.wkt is None or order.image_frequency is None or order.reference_date is None:
            return None  # a tile order, or a schedule we cannot read: ask about every day
        try:
            if not shapely.from_wkt(order.wkt).intersects(area):
                continue
        except shapely.errors.ShapelyError:
            return None
        relevant += 1
        frequency = max(int(order.image_frequency), 1)
        for day in days:
            in_range = (order.date_from is None or day >= order.date_from) and (
                order.date_to is None or day <= order.date_to
            )
            if in_range and (day - order.reference_date).days % frequency == 0:
                scheduled.add(day)
    return scheduled if relevant else None


def _produced(hook_result: Any, spec: AvailabilitySpec) -> list[dt.date]:
    dates: list[dt.date] = hook_result.dates_for(spec.model, list(spec.satellite_constellations))
    return dates


def check_once(hook: ClearSkyHook, tracker: AvailabilityTracker) -> Outcome | None:
    """One poll with the sync hook. Transient API errors propagate (the caller keeps waiting)."""
    spec = tracker.spec
    base = spec.request()
    if tracker.needs_schedule():
        tracker.skip_unscheduled(scheduled_days(hook.list_orders(include_expired=True), spec))
    produced = _produced(hook.search_available_dates(spec.search_request()), spec) if tracker.needs_search() else None
    for day in tracker.to_check(produced):
        try:
            state = classify(hook.check_composite_available(base.model_copy(update={"date": day})), spec.allow_partial)
        except ClearSkyError as error:
            found = _state_of_error(error)
            if found is None:
                raise
            state = found
        tracker.record(day, state)
    return tracker.outcome()


async def acheck_once(hook: ClearSkyHook, tracker: AvailabilityTracker) -> Outcome | None:
    """One poll with the async hook (same rules as :func:`check_once`)."""
    spec = tracker.spec
    base = spec.request()
    if tracker.needs_schedule():
        tracker.skip_unscheduled(scheduled_days(await hook.alist_orders(include_expired=True), spec))
    produced = None
    if tracker.needs_search():
        produced = _produced(await hook.asearch_available_dates(spec.search_request()), spec)
    for day in tracker.to_check(produced):
        try:
            answer = await hook.acheck_composite_available(base.model_copy(update={"date": day}))
            state = classify(answer, spec.allow_partial)
        except ClearSkyError as error:
            found = _state_of_error(error)
            if found is None:
                raise
            state = found
        tracker.record(day, state)
    return tracker.outcome()


class ClearSkyImageAvailabilityTrigger(BaseTrigger):
    """Waits until imagery is ready for an area and dates (see the module docs for the rules).

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
        super().__init__()  # type: ignore[no-untyped-call]
        self.spec = dict(spec)
        self.known_states = dict(known_states or {})
        self.clearsky_conn_id = clearsky_conn_id
        self.deadline = deadline
        self.poll_interval = float(poll_interval)
        self.max_poll_interval = float(max_poll_interval) if max_poll_interval is not None else None
        self.backoff_factor = float(backoff_factor)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the class path and the arguments that rebuild this trigger in the triggerer."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "spec": self.spec,
                "clearsky_conn_id": self.clearsky_conn_id,
                "deadline": self.deadline,
                "poll_interval": self.poll_interval,
                "max_poll_interval": self.max_poll_interval,
                "backoff_factor": self.backoff_factor,
                "known_states": self.known_states,
            },
        )

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
        except asyncio.TimeoutError:
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
        backoff = Backoff(self.poll_interval, self.backoff_factor, self.max_poll_interval)
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
