"""When imagery is ready: the rules shared by the availability sensor's poke mode and its trigger.

:class:`AvailabilitySpec` (what is waited for, as primitives), :class:`AvailabilityTracker` (what each date
is known to be) and one poll of the API, :func:`check_once` (sync hook) and :func:`acheck_once` (async hook),
both driving the same rules (:class:`Poll`).

Readiness (docs/api.md#availability) is ``CompositeAvailability.is_ready(allow_partial)`` per date, asked with the same
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
works out each order's image dates from its ``ReferenceDate``/``ImageFrequency`` (docs/api.md#values: ``d`` is an
image date iff ``(d - ReferenceDate) % ImageFrequency == 0`` within ``From``..``To``): days no order of the
model over the area schedules are ``not_scheduled`` without asking, and only the remaining days get a
``composite/available`` check. (When an order's schedule or area is unknown, e.g. a tile order, every day is
asked, as before.) After that one pass, each poll asks ``search/available`` once for the window and checks
again only the pending dates it lists. Ready, not scheduled, not covered and expired are final: never asked
again. The sensor's first check (on the worker) is handed to the trigger in its serialized state
(``known_states``), so the trigger starts where the worker stopped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_clearsky.exceptions import ClearSkyError, NoImageryError, NotCoveredByOrderError
from airflow_provider_clearsky.utils.coercion import parse_day

if TYPE_CHECKING:
    from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook
    from airflow_provider_clearsky.models import (
        AvailableDatesRequest,
        CompositeAvailability,
        ImageryRequest,
        TaskOrder,
    )

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


@dataclass(frozen=True)
class HookCall:
    """One request a poll needs: the sync hook's method name (the async one has the ``a`` prefix) and arguments."""

    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    def run(self, hook: ClearSkyHook) -> Any:
        """Send the request with the sync hook; return its answer, or the API error it raised."""
        try:
            return getattr(hook, self.method)(*self.args, **self.kwargs)
        except ClearSkyError as error:
            return error

    async def arun(self, hook: ClearSkyHook) -> Any:
        """Send the request with the async hook; return its answer, or the API error it raised."""
        try:
            return await getattr(hook, "a" + self.method)(*self.args, **self.kwargs)
        except ClearSkyError as error:
            return error


def _poll(tracker: AvailabilityTracker) -> Generator[HookCall, Any, Outcome | None]:
    """Ask for each request one poll needs, in order, and record what the answers say (the rules, without I/O)."""
    spec = tracker.spec
    base = spec.request()
    if tracker.needs_schedule():
        tracker.skip_unscheduled(
            scheduled_days((yield HookCall("list_orders", kwargs={"include_expired": True})), spec)
        )
    produced = None
    if tracker.needs_search():
        produced = _produced((yield HookCall("search_available_dates", (spec.search_request(),))), spec)
    for day in tracker.to_check(produced):
        try:
            answer = yield HookCall("check_composite_available", (base.model_copy(update={"date": day}),))
            state = classify(answer, spec.allow_partial)
        except ClearSkyError as error:
            found = _state_of_error(error)
            if found is None:
                raise
            state = found
        tracker.record(day, state)
    return tracker.outcome()


class Poll:
    """One poll of a tracker: :attr:`call` is the next request to send (None: done, see :attr:`outcome`)."""

    def __init__(self, tracker: AvailabilityTracker) -> None:
        self._steps = _poll(tracker)
        self.call: HookCall | None = None
        self.outcome: Outcome | None = None
        self.resume(None)

    def resume(self, answer: Any) -> None:
        """Hand the last request's answer (or its API error, raised where the rules asked) to the rules."""
        try:
            self.call = self._steps.throw(answer) if isinstance(answer, ClearSkyError) else self._steps.send(answer)
        except StopIteration as done:
            self.call, self.outcome = None, done.value


def check_once(hook: ClearSkyHook, tracker: AvailabilityTracker) -> Outcome | None:
    """One poll with the sync hook. Transient API errors propagate (the caller keeps waiting)."""
    poll = Poll(tracker)
    while (call := poll.call) is not None:
        poll.resume(call.run(hook))
    return poll.outcome


async def acheck_once(hook: ClearSkyHook, tracker: AvailabilityTracker) -> Outcome | None:
    """One poll with the async hook (same rules as :func:`check_once`)."""
    poll = Poll(tracker)
    while (call := poll.call) is not None:
        poll.resume(await call.arun(hook))
    return poll.outcome
