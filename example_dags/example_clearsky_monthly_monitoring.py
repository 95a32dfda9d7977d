"""Monthly monitoring of farm fields with a recurring ClearSKY order: last month's imagery, every month.

Copy this file, change ``AOI_FILE``, ``ASSET`` and the params, and create the ``clearsky_default`` connection.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, Param, task

from airflow_provider_clearsky.operators.download import ClearSkyDownloadCompositeOperator
from airflow_provider_clearsky.operators.orders import ClearSkyCreateOrderOperator
from airflow_provider_clearsky.sensors.availability import ClearSkyImageAvailabilitySensor
from airflow_provider_clearsky.sensors.order_status import ClearSkyOrderStatusSensor
from airflow_provider_clearsky.utils.windows import previous_month

DAG_ID = "example_clearsky_monthly_monitoring"
# The area: a file next to this DAG, read by the operators through ``template_ext`` (relative to the DAG folder).
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

1. **create_order** (`if_exists="reuse"`, `date_to=None`): the first run orders a recurring order from the
   first day of last month, within `max_cost_eur` this month and `max_monthly_cost_eur` per renewal. Every
   later run finds that order still renewing and reuses it: nothing is ordered or paid again. A run for a
   month before the order began orders just that month.
2. **wait_for_order** (deferrable) until the order is `UpToDate` (recurring) or `Completed` (one month).
3. **wait_for_images** (deferrable) until every image date of last month is ready, with the download's
   settings. Returns the dates.
4. **download** one composite per date (mapped; the map index shows the date) to
   `params.destination/<month>/`, with a checksum sidecar and a STAC item; never paid twice. Each takes the
   order (GUID and attribution notices) from **wait_for_order**'s result instead of reading it again.
5. **publish** emits the Asset `clearsky://monitoring/funen-dairy-fields` once per month with the file list.

"Last month" is `previous_month()`: right for scheduled runs, backfills, and manual runs with or without a
logical date (then the month before `run_after`), on the DAG's own timezone.
**Connection:** `clearsky_default` (type `clearsky`): API key in *Password*, base URL in *Host*.
"""

month = previous_month()  # .first_day, .last_day, .label of the run's last complete month


@task(outlets=[ASSET], multiple_outputs=False)
def publish(files: list[str], month: str, guid: str, outlet_events: Any = None) -> dict[str, Any]:
    """One Asset event for the whole month, carrying the files, so consumers never see half a month."""
    summary = {"month": month, "order_guid": guid, "files": sorted(files), "count": len(files)}
    outlet_events[ASSET].extra = summary
    print(f"{len(files)} composites of {month} (order {guid}):\n" + "\n".join(summary["files"]))
    return summary


with DAG(
    dag_id=DAG_ID,
    description="Recurring ClearSKY order (created once) and last month's composites, every month",
    doc_md=DOC_MD,
    schedule="@monthly",
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
    order = ClearSkyCreateOrderOperator(
        task_id="create_order",
        if_exists="reuse",
        wkt=AOI_FILE,
        model=MODEL,
        satellite_constellations=CONSTELLATIONS,
        image_frequency=IMAGE_FREQUENCY,
        date_from=month.first_day,
        date_to=None,  # recurring
        max_cost="{{ params.max_cost_eur }}",
        max_next_month_cost="{{ params.max_monthly_cost_eur }}",
    )
    wait_for_order = ClearSkyOrderStatusSensor(
        task_id="wait_for_order",
        order_guid=order.output,
        deferrable=True,
        poke_interval=POKE_SECONDS,
        max_wait=dt.timedelta(seconds=POKE_SECONDS * 4),
        timeout=dt.timedelta(days=7).total_seconds(),
    )
    wait_for_images = ClearSkyImageAvailabilitySensor(
        task_id="wait_for_images",
        wkt=AOI_FILE,
        date_from=month.first_day,
        date_to=month.last_day,
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
        destination=month.format("{{ params.destination }}/{label}"),
        # The order as wait_for_order read it: its GUID and attribution notices for the sidecars, no extra request.
        order_details=wait_for_order.output,
        map_index_template="{{ task.date }}",
        max_active_tis_per_dag=2,  # stay within the account's MaxConcurrentConnections
    ).expand(date=wait_for_images.output)

    publish(downloads.output, month.label, order.output)


if __name__ == "__main__":
    dag.test()
