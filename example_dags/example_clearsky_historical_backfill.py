"""Historical backfill: one ClearSKY order for a past period (weekly images), then download every image.

Trigger it by hand with the period to fetch; copy it and change ``AOI_FILE`` for your own area.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_clearsky.operators.download import ClearSkyDownloadCompositeOperator
from airflow_provider_clearsky.operators.orders import ClearSkyCreateOrderOperator
from airflow_provider_clearsky.sensors.availability import ClearSkyImageAvailabilitySensor
from airflow_provider_clearsky.sensors.order_status import ClearSkyOrderStatusSensor

try:
    from airflow.sdk.exceptions import AirflowFailException  # Airflow 3.1+
except ImportError:  # Airflow 3.0
    from airflow.exceptions import AirflowFailException

DAG_ID = "example_clearsky_historical_backfill"
AOI_FILE = "aoi/jutland_heath_restoration.wkt"
MODEL = "Stratus2"
CONSTELLATIONS = ["Sentinel1", "Sentinel2", "Landsat89"]
IMAGE_FREQUENCY = 7  # weekly
BANDS = "B4,B8,[B8_B4]"  # red, near infrared and NDVI

# How often the waits look (seconds); the demo and the tests use the emulator's fast clock and set this low.
POKE_SECONDS = float(os.environ.get("CLEARSKY_EXAMPLE_POKE_SECONDS", "1800"))

DOC_MD = """
### Historical backfill: a past period, weekly, downloaded in full

A one-off (historical) order for a past period, for example to build the baseline of a restoration project
before monitoring starts. Trigger it by hand; the params set the period (default: the three calendar months
before the day it runs).

1. **backfill_period**: checks the params: the period must start on the 1st of a month and end in the past.
2. **find_or_order**: an identical order placed earlier (same area, model, constellations, period and
   cadence, not cancelled) is reused, so triggering the DAG twice never pays twice. Otherwise
   **create_order** estimates, refuses above `max_cost_eur`, and orders `From` .. `To` with a weekly cadence
   (`ImageFrequency` 7, counted from `From`). Its extra link *ClearSKY order* opens the order in the dashboard.
3. **wait_for_order** (deferrable) until the order is `Completed`.
4. **wait_for_images** (deferrable) until every image date of the period is ready; returns the dates.
5. **download** one composite (red, NIR and NDVI) per date, mapped; the map index shows the date.
6. **report**: files and sizes.

`storage_months` keeps the imagery stored long enough to download it (the free window ends after the month
following the image month; a backfill of old months needs more). Orders cost order credits (EUR), downloads
processing units; the order includes one download pass per date (`ApiRequests` 1).

**Connection:** `clearsky_default` (type `clearsky`): API key in *Password*, base URL in *Host* (empty for
`https://api.clearsky.vision`).
"""


@task(multiple_outputs=True)
def backfill_period(params: Any = None, dag_run: Any = None) -> dict[str, str]:
    """The period to order: the params, or the three calendar months before the run."""
    run_day = pendulum.instance(dag_run.run_after).in_timezone("UTC").start_of("month")
    first = params["date_from"] or run_day.subtract(months=3).to_date_string()
    last = params["date_to"] or run_day.subtract(days=1).to_date_string()
    start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    if start.day != 1:
        raise AirflowFailException(f"date_from {first} must be the first day of a month, e.g. {start.replace(day=1)}")
    if end < start or end >= pendulum.now("UTC").date():
        raise AirflowFailException(f"date_to {last} must be after date_from and in the past (this is a backfill)")
    return {"date_from": first, "date_to": last}


@task.branch
def find_or_order(date_from: str, date_to: str, ti: Any = None) -> str:
    """Reuse an identical order placed earlier (a second trigger never pays twice), or order."""
    import shapely

    from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook
    from airflow_provider_clearsky.models.geometry import parse_aoi

    wanted = parse_aoi((Path(__file__).parent / AOI_FILE).read_text())
    with ClearSkyHook("clearsky_default") as hook:
        orders = hook.list_orders(recurring_only=False, include_expired=True)
    for order in orders:
        if (
            not order.is_failed
            and str(order.date_from) == date_from
            and str(order.date_to) == date_to
            and order.model == MODEL
            and sorted(order.satellite_constellations or []) == sorted(CONSTELLATIONS)
            and order.image_frequency == IMAGE_FREQUENCY
            and order.wkt is not None
            and shapely.hausdorff_distance(parse_aoi(order.wkt), wanted) < 1e-6  # same area, any WKT spelling
        ):
            print(f"Order {order.guid} ({order.status}) already covers {date_from} .. {date_to}: reusing it")
            ti.xcom_push(key="order_guid", value=order.guid)
            return "reuse_order"
    return "create_order"


@task
def reuse_order() -> None:
    """The branch taken when the period was ordered before."""


@task(trigger_rule="none_failed_min_one_success")
def order_guid(ti: Any = None) -> str:
    guid = ti.xcom_pull(task_ids="find_or_order", key="order_guid") or ti.xcom_pull(task_ids="create_order")
    if not guid:
        raise AirflowFailException("no order: neither reused nor created")
    return str(guid)


@task(multiple_outputs=False)  # one XCom with the whole summary
def report(files: list[str], guid: str) -> dict[str, Any]:
    """What was fetched: one line per file with its size."""
    from airflow.sdk import ObjectStoragePath

    def size_of(uri: str) -> int:
        if uri.startswith("file://"):  # local files (Airflow 3.0's ObjectStoragePath refuses file:// URLs)
            return Path(uri.removeprefix("file://")).stat().st_size
        return int(ObjectStoragePath(uri).stat()["size"])  # s3://, gs://, ... through Airflow connections

    rows = [{"uri": uri, "bytes": size_of(uri)} for uri in sorted(files)]
    total = sum(row["bytes"] for row in rows)
    print(f"Order {guid}: {len(rows)} composites, {total / 1e6:.1f} MB")
    for row in rows:
        print(f"  {row['bytes']:>12,d}  {row['uri']}")
    return {"order_guid": guid, "files": rows, "total_bytes": total}


with DAG(
    dag_id=DAG_ID,
    description="One-off ClearSKY order for a past period, weekly images, all downloaded",
    doc_md=DOC_MD,
    schedule=None,  # on demand
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # it orders
    tags=["clearsky", "example", "backfill"],
    params={
        "date_from": Param(
            "", type="string", description="First day of the first month (YYYY-MM-01); empty: 3 months ago"
        ),
        "date_to": Param("", type="string", description="Last day (YYYY-MM-DD); empty: the end of last month"),
        "storage_months": Param(3, type="integer", minimum=1, description="Months the imagery stays stored"),
        "max_cost_eur": Param(50.0, type="number", minimum=0, description="Most the order may cost"),
        "destination": Param(
            "/tmp/clearsky-examples/backfill",  # noqa: S108 - an example path; use s3://conn@bucket/... in production
            type="string",
            description="Folder or fsspec URL for the files",
        ),
    },
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=5)},
) as dag:
    period = backfill_period()
    branch = find_or_order(period["date_from"], period["date_to"])
    create = ClearSkyCreateOrderOperator(
        task_id="create_order",
        wkt=AOI_FILE,
        model=MODEL,
        satellite_constellations=CONSTELLATIONS,
        image_frequency=IMAGE_FREQUENCY,
        date_from=period["date_from"],
        date_to=period["date_to"],
        storage_months="{{ params.storage_months }}",
        max_cost="{{ params.max_cost_eur }}",
    )
    reuse = reuse_order()
    branch >> [create, reuse]
    guid = order_guid()
    [create, reuse] >> guid

    wait_for_order = ClearSkyOrderStatusSensor(
        task_id="wait_for_order",
        order_guid=guid,
        target_statuses=["Completed"],
        deferrable=True,
        poke_interval=POKE_SECONDS,
        max_wait=dt.timedelta(seconds=POKE_SECONDS * 4),
        timeout=dt.timedelta(days=14).total_seconds(),
    )
    wait_for_images = ClearSkyImageAvailabilitySensor(
        task_id="wait_for_images",
        wkt=AOI_FILE,
        date_from=period["date_from"],
        date_to=period["date_to"],
        ready_when="all",
        model=MODEL,
        satellite_constellations=CONSTELLATIONS,
        bands=BANDS,
        deferrable=True,
        poke_interval=POKE_SECONDS,
        max_wait=dt.timedelta(seconds=POKE_SECONDS * 4),
        timeout=dt.timedelta(days=3).total_seconds(),
    )
    wait_for_order >> wait_for_images

    downloads = ClearSkyDownloadCompositeOperator.partial(
        task_id="download",
        wkt=AOI_FILE,
        model=MODEL,
        satellite_constellations=CONSTELLATIONS,
        bands=BANDS,
        destination="{{ params.destination }}/{{ ti.xcom_pull(task_ids='backfill_period', key='date_from') }}",
        order_guid=guid,
        map_index_template="{{ task.date }}",
        max_active_tis_per_dag=2,
    ).expand(date=wait_for_images.output)

    report(downloads.output, guid)


if __name__ == "__main__":
    dag.test()
