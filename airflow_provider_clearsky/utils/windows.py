"""The calendar month or ISO week a DAG run covers, for every kind of run, in the DAG's timezone.

DAG authors pass these as operator arguments instead of writing template arithmetic::

    from airflow_provider_clearsky.utils.windows import previous_month

    month = previous_month()
    ClearSkyImageAvailabilitySensor(..., date_from=month.first_day, date_to=month.last_day)

Each attribute (``first_day``, ``last_day``, ``label``, ``month_start``) is a value Airflow resolves when the
task renders its templated fields, like an ``XComArg``: nothing is computed at DAG-parse time.

**Which period.** A run is placed at its *reference moment*: the end of its data interval when it has one
(a scheduled run, a backfill, a manual run with a logical date), else its logical date, else (a manual run
without a logical date, Airflow 3's default) ``dag_run.run_after``. The window is the last complete calendar
month (or Monday-to-Sunday ISO week) before that moment, read on the DAG's own clock (``dag.timezone``, the
timezone of its ``start_date``). So ``schedule="@monthly"`` (a zero-length interval on Airflow 3) and
``CronDataIntervalTimetable("0 0 1 * *")`` (the interval *is* last month) both give last month, and a DAG in
Europe/Copenhagen whose run fires at 00:00 local on 1 July (22:00 UTC on 30 June) gets June, not May.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pendulum import DateTime

Period = Literal["month", "week"]
Part = Literal["first_day", "last_day", "label", "month_start"]
PARTS: tuple[Part, ...] = ("first_day", "last_day", "label", "month_start")


@dataclass(frozen=True)
class Window:
    """A resolved window of days, with its label.

    ``first_day`` and ``last_day`` (inclusive), a ``label`` ("2026-06" or "2026-W26") and ``month_start``,
    the first day of the month ``first_day`` is in (what an order's ``date_from`` needs).
    """

    first_day: dt.date
    last_day: dt.date
    label: str

    @property
    def month_start(self) -> dt.date:
        """Return the first day of the month ``first_day`` is in."""
        return self.first_day.replace(day=1)

    def as_strings(self) -> dict[str, str]:
        """ISO dates and the label, as templates and XCom carry them."""
        return {
            "first_day": self.first_day.isoformat(),
            "last_day": self.last_day.isoformat(),
            "label": self.label,
            "month_start": self.month_start.isoformat(),
        }


def reference_moment(context: Mapping[str, Any]) -> DateTime:
    """Return the moment a run stands for, on the DAG's clock (see the module text)."""
    import pendulum

    moment = context.get("data_interval_end") or context.get("logical_date")
    if moment is None:
        dag_run = context.get("dag_run")
        moment = getattr(dag_run, "run_after", None)
    if moment is None:
        raise ValueError(
            "this run has neither a data interval, a logical date nor run_after; cannot tell which period it covers"
        )
    local: DateTime = pendulum.instance(moment).in_timezone(dag_timezone(context))
    return local


def dag_timezone(context: Mapping[str, Any]) -> Any:
    """Return the DAG's timezone (from its ``start_date``), UTC when the context has no DAG."""
    dag = context.get("dag")
    timezone = getattr(dag, "timezone", None)
    return timezone if timezone is not None else "UTC"


def previous_window(moment: dt.datetime, period: Period) -> Window:
    """Return the last complete calendar month or ISO week before ``moment``, on ``moment``'s own clock."""
    import pendulum

    local = pendulum.instance(moment) if moment.tzinfo is not None else pendulum.instance(moment, tz="UTC")
    if period == "month":
        start = local.start_of("month").subtract(months=1)
        first, last = start.date(), start.end_of("month").date()
        return Window(first, last, f"{first:%Y-%m}")
    if period == "week":
        start = local.start_of("week").subtract(weeks=1)  # pendulum weeks start on Monday, as ISO weeks do
        first = start.date()
        year, week, _ = first.isocalendar()
        return Window(first, first + dt.timedelta(days=6), f"{year}-W{week:02d}")
    raise ValueError(f"period must be 'month' or 'week', got {period!r}")


def window_for(context: Mapping[str, Any], period: Period) -> Window:
    """Return the window of the run in ``context``: for ``@task`` functions (``def f(**context)``)."""
    return previous_window(reference_moment(context), period)


class WindowValue:
    """One part of the run's window, resolved by Airflow when the task renders its templated fields."""

    def __init__(self, period: Period, part: Part, template: str | None = None) -> None:
        self.period = period
        self.part = part
        self.template = template

    def resolve(self, context: Mapping[str, Any]) -> str:
        """Return the value for the running task's context (Airflow calls this when it renders arguments)."""
        values = window_for(context, self.period).as_strings()
        if self.template is None:
            return values[self.part]
        task = context.get("task")
        text = task.render_template(self.template, context) if task is not None else self.template
        for name, value in values.items():
            text = text.replace("{" + name + "}", value)
        return str(text)

    def iter_references(self) -> tuple[()]:
        """Return no upstream references: the value depends on the run only, like a DAG param."""
        return ()  # no upstream task: like a DAG param

    def __repr__(self) -> str:
        head = f"previous_{self.period}().{self.part}"
        return head if self.template is None else f"previous_{self.period}().format({self.template!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WindowValue) and repr(self) == repr(other)

    def __hash__(self) -> int:
        return hash(repr(self))


class RunWindow:
    """The previous month or week of a run, as operator arguments (see :func:`previous_month`)."""

    def __init__(self, period: Period) -> None:
        self.period = period
        self.first_day = WindowValue(period, "first_day")
        self.last_day = WindowValue(period, "last_day")
        self.label = WindowValue(period, "label")
        self.month_start = WindowValue(period, "month_start")

    def format(self, template: str) -> WindowValue:
        """Return text with ``{first_day}``, ``{last_day}``, ``{label}``, ``{month_start}`` filled in, after Jinja.

        For example ``month.format("{{ params.destination }}/{label}")``.
        """
        return WindowValue(self.period, "label", template)

    def __repr__(self) -> str:
        return f"previous_{self.period}()"


def previous_month() -> RunWindow:
    """Return the last complete calendar month of the run: ``.first_day``, ``.last_day``, ``.label`` ("2026-06")."""
    return RunWindow("month")


def previous_week() -> RunWindow:
    """Return the last complete ISO week (Monday to Sunday) of the run.

    It has ``.first_day``, ``.last_day``, ``.label`` ("2026-W26"), ``.month_start`` (the first day of the
    month the week starts in, for an order).
    """
    return RunWindow("week")


__all__ = [
    "RunWindow",
    "Window",
    "WindowValue",
    "previous_month",
    "previous_week",
    "previous_window",
    "reference_moment",
    "window_for",
]
