"""Month and week windows: every kind of run, and the DAG's timezone on both sides of local midnight (issue 17 D7)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pendulum
import pytest

from airflow_provider_clearsky.utils.windows import previous_month, previous_week, previous_window, window_for

UTC = dt.UTC
CPH = pendulum.timezone("Europe/Copenhagen")


def context(tz: Any = "UTC", *, end: Any = None, logical: Any = None, run_after: Any = None) -> dict[str, Any]:
    return {
        "dag": SimpleNamespace(timezone=pendulum.timezone(tz) if isinstance(tz, str) else tz),
        "data_interval_end": end,
        "logical_date": logical,
        "dag_run": SimpleNamespace(run_after=run_after),
    }


def month(ctx: dict[str, Any]) -> tuple[str, str, str]:
    values = window_for(ctx, "month").as_strings()
    return values["first_day"], values["last_day"], values["label"]


def test_scheduled_monthly_run_on_airflow3_zero_length_interval_is_last_month() -> None:
    first = dt.datetime(2026, 7, 1, tzinfo=UTC)
    assert month(context(end=first, logical=first, run_after=first)) == ("2026-06-01", "2026-06-30", "2026-06")


def test_cron_data_interval_run_uses_the_interval_end_not_the_logical_date() -> None:
    # CronDataIntervalTimetable: the run of 1 July has logical_date = interval start = 1 June.
    ctx = context(end=dt.datetime(2026, 7, 1, tzinfo=UTC), logical=dt.datetime(2026, 6, 1, tzinfo=UTC))
    assert month(ctx) == ("2026-06-01", "2026-06-30", "2026-06")


def test_manual_run_with_and_without_a_logical_date() -> None:
    assert month(context(logical=dt.datetime(2024, 3, 15, 8, tzinfo=UTC))) == ("2024-02-01", "2024-02-29", "2024-02")
    no_logical_date = context(run_after=dt.datetime(2025, 1, 10, 9, tzinfo=UTC))
    assert month(no_logical_date) == ("2024-12-01", "2024-12-31", "2024-12")


def test_copenhagen_dag_on_both_sides_of_local_midnight() -> None:
    # 00:00 on 1 July in Copenhagen is 22:00 UTC on 30 June: the run is July's, so the window is June.
    after = pendulum.datetime(2026, 7, 1, 0, 0, tz=CPH).in_timezone("UTC")
    assert after.day == 30
    assert month(context(CPH, end=after, logical=after, run_after=after)) == ("2026-06-01", "2026-06-30", "2026-06")
    # One minute before local midnight it is still 30 June in Copenhagen: the window is May.
    before = pendulum.datetime(2026, 6, 30, 23, 59, tz=CPH).in_timezone("UTC")
    assert month(context(CPH, run_after=before)) == ("2026-05-01", "2026-05-31", "2026-05")
    # The same UTC instant in a UTC DAG is still 30 June as well.
    assert month(context("UTC", run_after=after)) == ("2026-05-01", "2026-05-31", "2026-05")


def test_previous_iso_week() -> None:
    monday = dt.datetime(2026, 1, 5, tzinfo=UTC)  # a Monday: the week before is 29 Dec 2025 .. 4 Jan 2026
    values = previous_window(monday, "week").as_strings()
    assert values == {
        "first_day": "2025-12-29",
        "last_day": "2026-01-04",
        "label": "2026-W01",
        "month_start": "2025-12-01",
    }
    wednesday = dt.datetime(2026, 1, 7, 12, tzinfo=UTC)
    assert previous_window(wednesday, "week").first_day == dt.date(2025, 12, 29)
    # Copenhagen: Monday 00:30 local is Sunday 23:30 UTC; the week is the local one.
    local_monday = pendulum.datetime(2026, 1, 5, 0, 30, tz=CPH).in_timezone("UTC")
    assert window_for(context(CPH, run_after=local_monday), "week").label == "2026-W01"
    assert window_for(context("UTC", run_after=local_monday), "week").label == "2025-W52"


def test_values_resolve_at_render_time_and_say_what_they_are() -> None:
    ctx = context(run_after=dt.datetime(2026, 3, 2, tzinfo=UTC))
    month_values = previous_month()
    assert month_values.first_day.resolve(ctx) == "2026-02-01"
    assert month_values.last_day.resolve(ctx) == "2026-02-28"
    assert month_values.month_start.resolve(ctx) == "2026-02-01"
    assert previous_week().label.resolve(ctx) == "2026-W09"
    assert repr(month_values.last_day) == "previous_month().last_day"
    path = month_values.format("/data/{label}/{first_day}")
    assert path.resolve(ctx) == "/data/2026-02/2026-02-01"


def test_a_run_without_any_moment_is_refused() -> None:
    with pytest.raises(ValueError, match="run_after"):
        window_for(context(), "month")


COPENHAGEN_DAG = """
import pendulum
from airflow.sdk import DAG, task

from airflow_provider_clearsky.utils.windows import previous_month

month = previous_month()

with DAG("clearsky_windows_copenhagen", schedule="@monthly", catchup=False,
         start_date=pendulum.datetime(2025, 1, 1, tz="Europe/Copenhagen")) as dag:

    @task
    def window(first_day: str, last_day: str) -> list[str]:
        return [first_day, last_day]

    window(month.first_day, month.last_day)
"""


@pytest.mark.dag
@pytest.mark.parametrize(
    ("logical_date", "expected"),
    [
        # 00:00 on 1 July in Copenhagen (22:00 UTC on 30 June): the run of July, so June (D7 picked May).
        (dt.datetime(2026, 6, 30, 22, 0, tzinfo=UTC), ["2026-06-01", "2026-06-30"]),
        # 23:59 on 30 June in Copenhagen: still June there, so May.
        (dt.datetime(2026, 6, 30, 21, 59, tzinfo=UTC), ["2026-05-01", "2026-05-31"]),
    ],
)
def test_a_copenhagen_dag_run_on_either_side_of_local_midnight(
    write_dag: Any, logical_date: dt.datetime, expected: list[str]
) -> None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    dag = write_dag("clearsky_windows_copenhagen", COPENHAGEN_DAG)
    run = dag.test(logical_date=logical_date)

    assert run.state == "success"
    with create_session() as session:
        [row] = session.scalars(
            select(XComModel).where(XComModel.run_id == run.run_id, XComModel.task_id == "window")
        ).all()
        assert XComModel.deserialize_value(row) == expected
