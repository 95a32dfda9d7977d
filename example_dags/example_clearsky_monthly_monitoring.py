"""Monthly monitoring of farm fields with a recurring ClearSKY order: last month's imagery, every month.

Copy this file, change ``AOI_FILE``, ``ASSET`` and the params, and create the ``clearsky_default`` connection.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, Param, task

from airflow_provider_clearsky.operators.download import ClearSkyDownloadCompositeOperator
from airflow_provider_clearsky.operators.orders import ClearSkyCreateOrderOperator, ClearSkyEstimateOrderOperator
from airflow_provider_clearsky.sensors.availability import ClearSkyImageAvailabilitySensor
from airflow_provider_clearsky.sensors.order_status import ClearSkyOrderStatusSensor

try:
    from airflow.sdk.exceptions import AirflowFailException  # Airflow 3.1+
except ImportError:  # Airflow 3.0
    from airflow.exceptions import AirflowFailException

try:
    from airflow.sdk import CronDataIntervalTimetable  # Airflow 3.1+
except ImportError:  # Airflow 3.0
    from airflow.timetables.interval import CronDataIntervalTimetable

DAG_ID = "example_clearsky_monthly_monitoring"
# The area: a file next to this DAG. The operators read it through ``template_ext`` (".wkt"/".geojson" file
# names are rendered as file contents, relative to the DAG folder).
AOI_FILE = "aoi/funen_dairy_fields.wkt"
MODEL = "Stratus2"
CONSTELLATIONS = ["Sentinel1", "Sentinel2", "Landsat89"]  # what Stratus2 requires
IMAGE_FREQUENCY = 7  # one image a week
BANDS = "B2,B3,B4,B8"
# Downstream DAGs schedule on this Asset: one event per month, when every image of the month is stored.
ASSET = Asset("clearsky://monitoring/funen-dairy-fields")

# How often the waits look. Real orders take hours to days: every 30 minutes, backing off to 2 hours. The demo
# and the tests run against the emulator with a fast clock and set CLEARSKY_EXAMPLE_POKE_SECONDS to seconds.
POKE_SECONDS = float(os.environ.get("CLEARSKY_EXAMPLE_POKE_SECONDS", "1800"))

DOC_MD = """
### Monthly monitoring with a recurring ClearSKY order

Runs at 00:00 UTC on the 1st of every month and fetches **last month's** cloud-free Sentinel-2 composites of
the fields in `aoi/funen_dairy_fields.wkt` (weekly images, bands B2, B3, B4, B8, 10 m).

1. **month_window**: the calendar month this run covers (see *The month window* below).
2. **find_or_order**: a recurring order renews itself every month, so it is ordered **once**. The task lists
   the account's recurring orders and looks for one that still renews with this area, model, constellations
   and cadence. Found and covering the month: it is reused (**reuse_order**), nothing is ordered or paid.
   None: **estimate_order** → **budget_gate** → **create_order** order it (recurring, `To` = null, `From` = the
   first day of last month, so last month is back-filled and every later month follows). A recurring order
   exists but starts after this month (a run for an older month): only that month is ordered, as a one-off.
3. **budget_gate** fails the run (no retry, nothing ordered) when this month's or next month's estimate
   exceeds `max_cost_eur` / `max_monthly_cost_eur`; **create_order** checks the same limits again on a fresh
   estimate right before it orders, and never orders twice on retries (adopts the order of an earlier try).
4. **wait_for_order** (deferrable) until the order is `UpToDate` (recurring) or `Completed` (one-off).
5. **wait_for_images** (deferrable) until every image date of last month is ready for download, with the
   exact download settings. Returns the dates.
6. **download** one composite per date (dynamic task mapping; the map index shows the date), streamed to
   `params.destination/<month>/`, with a checksum sidecar and a STAC item. A file already complete is
   never downloaded (or paid) twice.
7. **publish** emits the Asset `clearsky://monitoring/funen-dairy-fields` once per month with the file list.

**Connection:** `clearsky_default` (type `clearsky`): API key in *Password*, base URL in *Host* (empty for
`https://api.clearsky.vision`; the demo points it at the local emulator).

**The month window.** On Airflow 3, `schedule="@monthly"` is a *CronTriggerTimetable*: the run of 1 July has
a zero-length data interval (start = end = 1 July), so `data_interval_start` is **not** last month.
This DAG uses `CronDataIntervalTimetable("0 0 1 * *")`: the run that starts on 1 July covers
[1 June, 1 July). A manual run with a logical date covers the last complete month before it; a manual run
without a logical date (Airflow 3's default) has no data interval, and the month before `run_after` is used.
"""


@task(multiple_outputs=True)
def month_window(data_interval_start: Any = None, data_interval_end: Any = None, dag_run: Any = None) -> dict[str, str]:
    """The calendar month this run fetches: ``first_day``, ``last_day`` (inclusive) and ``month``.

    The idiom, on Airflow 3:

    * ``CronDataIntervalTimetable("0 0 1 * *")`` (this DAG): the data interval *is* last month, so use
      ``data_interval_start`` and ``data_interval_end - 1 day``. In templates:
      ``"{{ data_interval_start | ds }}"`` and ``"{{ (data_interval_end - macros.timedelta(days=1)) | ds }}"``.
    * ``schedule="@monthly"`` (CronTriggerTimetable, zero-length interval): compute from the logical date,
      ``"{{ logical_date.subtract(months=1).start_of('month') | ds }}"``.
    * No data interval at all (manual run without a logical date): the month before ``run_after``.
    """
    if data_interval_start is not None and data_interval_end is not None and data_interval_end > data_interval_start:
        first = pendulum.instance(data_interval_start).in_timezone("UTC").date()
        last = pendulum.instance(data_interval_end).in_timezone("UTC").date() - dt.timedelta(days=1)
    else:
        run_after = pendulum.instance(dag_run.run_after).in_timezone("UTC")
        first = run_after.subtract(months=1).start_of("month").date()
        last = run_after.start_of("month").date() - dt.timedelta(days=1)
    if first.day != 1 or last.month != first.month or (last + dt.timedelta(days=1)).day != 1:
        raise AirflowFailException(
            f"the data interval {first} .. {last} is not one calendar month; schedule this DAG with "
            'CronDataIntervalTimetable("0 0 1 * *", timezone="UTC")'
        )
    return {"first_day": first.isoformat(), "last_day": last.isoformat(), "month": first.strftime("%Y-%m")}


@task.branch
def find_or_order(first_day: str, last_day: str, ti: Any = None) -> str:
    """Reuse the recurring order that already covers this month, or go and order (once)."""
    import shapely

    from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook
    from airflow_provider_clearsky.models.geometry import parse_aoi

    wanted = parse_aoi((Path(__file__).parent / AOI_FILE).read_text())
    month_start = dt.date.fromisoformat(first_day)

    def same_order(order: Any) -> bool:
        return (
            not order.is_failed  # not Canceled / denied
            and order.is_recurring  # To is null: still renews (a stopped renewal sets To)
            and order.model == MODEL
            and sorted(order.satellite_constellations or []) == sorted(CONSTELLATIONS)
            and order.image_frequency == IMAGE_FREQUENCY
            and order.wkt is not None
            and shapely.hausdorff_distance(parse_aoi(order.wkt), wanted) < 1e-6  # same area, any WKT spelling
        )

    with ClearSkyHook("clearsky_default") as hook:
        ours = sorted((o for o in hook.list_orders(recurring_only=True) if same_order(o)), key=lambda o: o.date_from)
    covering = [o for o in ours if o.date_from is not None and o.date_from <= month_start]
    if covering:
        order = covering[0]
        print(f"Recurring order {order.guid} ({order.status}, since {order.date_from}) covers {first_day}: reusing it")
        ti.xcom_push(key="order_guid", value=order.guid)
        return "reuse_order"
    # No renewing order covers the month. With none at all, order a recurring one starting this month; when one
    # exists but starts later (a run for an older month), order just this month, as a one-off.
    if ours:
        print(f"Order {ours[0].guid} renews from {ours[0].date_from} only: ordering {first_day} .. {last_day} once")
        ti.xcom_push(key="date_to", value=last_day)
        ti.xcom_push(key="recurring", value=False)
    else:
        print(f"No recurring order covers {first_day}: ordering a recurring one")
        ti.xcom_push(key="recurring", value=True)  # asked for explicitly: a date_to rendered "None" alone is refused
    return "estimate_order"


@task
def reuse_order() -> None:
    """The branch taken when a recurring order already covers the month: nothing to order."""


@task(multiple_outputs=False)  # one XCom, not one per key (a dict return type would split it)
def budget_gate(estimate: dict[str, Any], params: Any = None) -> dict[str, Any]:
    """Stop before ordering when the estimate is above budget (the run fails; nothing is ordered)."""
    limit_now, limit_monthly = float(params["max_cost_eur"]), float(params["max_monthly_cost_eur"])
    now_cost, next_cost = estimate["current_month_cost"], estimate["next_month_cost"]
    problems = []
    if now_cost is None or now_cost > limit_now:
        problems.append(f"this month's cost {now_cost} {estimate['currency']} exceeds max_cost_eur {limit_now}")
    if estimate["recurring"] and (next_cost is None or next_cost > limit_monthly):
        problems.append(f"the monthly renewal {next_cost} {estimate['currency']} exceeds max_monthly_cost_eur")
    if not estimate["image_dates"]:
        problems.append("the estimate lists no image date")
    if problems:
        raise AirflowFailException("Not ordering: " + "; ".join(problems) + ". Raise the budget params to go ahead.")
    print(
        f"Within budget: {now_cost} {estimate['currency']} now, {next_cost} per month from next month, "
        f"{estimate['billed_area_km2']} km², {estimate['image_date_count']} image dates"
    )
    return estimate


@task(trigger_rule="none_failed_min_one_success")
def order_guid(ti: Any = None) -> str:
    """The order that covers the month: the reused one, or the one just created."""
    guid = ti.xcom_pull(task_ids="find_or_order", key="order_guid") or ti.xcom_pull(task_ids="create_order")
    if not guid:
        raise AirflowFailException("no order: neither reused nor created")
    return str(guid)


@task(outlets=[ASSET], multiple_outputs=False)
def publish(files: list[str], month: str, guid: str, outlet_events: Any = None) -> dict[str, Any]:
    """One Asset event for the whole month, carrying the files, so consumers never see half a month."""
    uris = sorted(files)
    summary = {"month": month, "order_guid": guid, "files": uris, "count": len(uris)}
    outlet_events[ASSET].extra = summary
    print(f"{len(uris)} composites of {month} (order {guid}):\n" + "\n".join(uris))
    return summary


with DAG(
    dag_id=DAG_ID,
    description="Recurring ClearSKY order (created once) and last month's composites, every month",
    doc_md=DOC_MD,
    schedule=CronDataIntervalTimetable("0 0 1 * *", timezone="UTC"),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # it orders: never two runs deciding "no order yet" at the same time
    tags=["clearsky", "example", "recurring"],
    params={
        "max_cost_eur": Param(25.0, type="number", minimum=0, description="Most the order may cost this month"),
        "max_monthly_cost_eur": Param(10.0, type="number", minimum=0, description="Most the monthly renewal may cost"),
        "destination": Param(
            "/tmp/clearsky-examples/monthly",  # noqa: S108 - an example path; use s3://conn@bucket/... in production
            type="string",
            description="Folder or fsspec URL for the files",
        ),
    },
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=5)},
) as dag:
    window = month_window()
    branch = find_or_order(window["first_day"], window["last_day"])

    estimate = ClearSkyEstimateOrderOperator(
        task_id="estimate_order",
        wkt=AOI_FILE,
        model=MODEL,
        satellite_constellations=CONSTELLATIONS,
        image_frequency=IMAGE_FREQUENCY,
        date_from=window["first_day"],
        date_to="{{ ti.xcom_pull(task_ids='find_or_order', key='date_to') }}",  # "None" when recurring
        recurring="{{ ti.xcom_pull(task_ids='find_or_order', key='recurring') }}",
    )
    gate = budget_gate(estimate.output)
    create = ClearSkyCreateOrderOperator(
        task_id="create_order",
        wkt=AOI_FILE,
        model=MODEL,
        satellite_constellations=CONSTELLATIONS,
        image_frequency=IMAGE_FREQUENCY,
        date_from=window["first_day"],
        date_to="{{ ti.xcom_pull(task_ids='find_or_order', key='date_to') }}",
        recurring="{{ ti.xcom_pull(task_ids='find_or_order', key='recurring') }}",
        max_cost="{{ params.max_cost_eur }}",
        max_next_month_cost="{{ params.max_monthly_cost_eur }}",
    )
    reuse = reuse_order()
    branch >> [estimate, reuse]
    gate >> create
    guid = order_guid()
    [create, reuse] >> guid

    wait_for_order = ClearSkyOrderStatusSensor(
        task_id="wait_for_order",
        order_guid=guid,
        deferrable=True,
        poke_interval=POKE_SECONDS,
        max_wait=dt.timedelta(seconds=POKE_SECONDS * 4),
        timeout=dt.timedelta(days=7).total_seconds(),
    )
    wait_for_images = ClearSkyImageAvailabilitySensor(
        task_id="wait_for_images",
        wkt=AOI_FILE,
        date_from=window["first_day"],
        date_to=window["last_day"],
        ready_when="all",
        model=MODEL,
        satellite_constellations=CONSTELLATIONS,
        bands=BANDS,
        deferrable=True,
        poke_interval=POKE_SECONDS,
        max_wait=dt.timedelta(seconds=POKE_SECONDS * 4),
        timeout=dt.timedelta(days=10).total_seconds(),
    )
    wait_for_order >> wait_for_images

    downloads = ClearSkyDownloadCompositeOperator.partial(
        task_id="download",
        wkt=AOI_FILE,
        model=MODEL,
        satellite_constellations=CONSTELLATIONS,
        bands=BANDS,
        resolution=10,
        destination="{{ params.destination }}/{{ ti.xcom_pull(task_ids='month_window', key='month') }}",
        order_guid=guid,
        map_index_template="{{ task.date }}",
        max_active_tis_per_dag=2,  # stay within the account's MaxConcurrentConnections
    ).expand(date=wait_for_images.output)

    publish(downloads.output, window["month"], guid)


if __name__ == "__main__":
    dag.test()
