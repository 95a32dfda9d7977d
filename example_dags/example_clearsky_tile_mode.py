"""Tile mode: order the cheapest tile/minitile cover of an area, with tile deduplication, download by tile.

Grid-aligned files (one per tile or minitile and date) suit teams that mosaic or tile imagery themselves.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_clearsky.operators.download import ClearSkyDownloadTileOperator
from airflow_provider_clearsky.operators.orders import (
    ClearSkyCreateOrderOperator,
    ClearSkyEstimateOrderOperator,
    ClearSkyOptimizeTilesOperator,
)
from airflow_provider_clearsky.sensors.availability import ClearSkyImageAvailabilitySensor
from airflow_provider_clearsky.sensors.order_status import ClearSkyOrderStatusSensor

try:
    from airflow.sdk.exceptions import AirflowFailException  # Airflow 3.1+
except ImportError:  # Airflow 3.0
    from airflow.exceptions import AirflowFailException

DAG_ID = "example_clearsky_tile_mode"
AOI_FILE = "aoi/rheingau_vineyards.geojson"
MODEL = "Stratus2"
CONSTELLATIONS = ["Sentinel1", "Sentinel2", "Landsat89"]
IMAGE_FREQUENCY = 7
BANDS = "rgb"

# How often the waits look (seconds); the demo and the tests use the emulator's fast clock and set this low.
POKE_SECONDS = float(os.environ.get("CLEARSKY_EXAMPLE_POKE_SECONDS", "1800"))

DOC_MD = """
### Tile mode: cheapest grid cover, deduplicated order, download by tile

For the vineyards in `aoi/rheingau_vineyards.geojson`, one month of weekly imagery ordered by grid cell
instead of by polygon (tile orders cost 20 % of the polygon rate per km², minitiles 50 %).

1. **month_to_order**: the `month` param (`YYYY-MM`), default last month.
2. **optimize_tiles**: the cheapest cover of the area by whole tiles and minitiles (free).
   (`ClearSkySearchTilesOperator` lists every orderable cell instead, for your own selection.)
3. **order_cells**: the GUID lists, checked non-empty.
4. **estimate_order**: price and image dates of the tile order (free).
5. **create_order**: orders the cells with **`TileDeduplication`**: cells already in an earlier tile order
   with the same model and constellations are not charged again, so re-running the DAG for the same month, or
   ordering an overlapping area later, does not pay twice for a cell. Refuses above `max_cost_eur` (checked
   against the estimate, which does not know about deduplication: a safe upper bound).
6. **wait_for_order** / **wait_for_images** (deferrable): order `Completed`, then every image date of the
   month ready for the area.
7. **download_tiles**: one mapped task per date (the map index shows it) downloads every ordered tile and
   minitile of that date through the tile endpoints, each file grid-aligned, with sidecar and STAC item.

**Connection:** `clearsky_default` (type `clearsky`): API key in *Password*, base URL in *Host* (empty for
`https://api.clearsky.vision`).
"""


@task(multiple_outputs=True)
def month_to_order(params: Any = None, dag_run: Any = None) -> dict[str, str]:
    """First and last day of the month to order: the ``month`` param, or the month before the run."""
    if params["month"]:
        first = pendulum.from_format(params["month"], "YYYY-MM", tz="UTC")
    else:
        first = pendulum.instance(dag_run.run_after).in_timezone("UTC").subtract(months=1).start_of("month")
    return {"first_day": first.to_date_string(), "last_day": first.end_of("month").to_date_string()}


@task(multiple_outputs=True)
def order_cells(cover: dict[str, list[str]]) -> dict[str, list[str]]:
    """The optimized cover as two GUID lists (one XCom each, so tasks can take them as native lists)."""
    tiles, minitiles = cover["tile_guids"], cover["minitile_guids"]
    if not tiles and not minitiles:
        raise AirflowFailException("the area is not covered by any orderable tile; check the AOI file")
    print(f"Ordering {len(tiles)} tile(s) and {len(minitiles)} minitile(s)")
    return {"tile_guids": tiles, "minitile_guids": minitiles}


with DAG(
    dag_id=DAG_ID,
    description="ClearSKY tile order (optimized cover, deduplicated) and grid-aligned downloads",
    doc_md=DOC_MD,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # it orders
    tags=["clearsky", "example", "tiles"],
    params={
        "month": Param("", type="string", description="Month to order, YYYY-MM; empty: last month"),
        "max_cost_eur": Param(50.0, type="number", minimum=0, description="Most the order may cost"),
        "destination": Param(
            "/tmp/clearsky-examples/tiles",  # noqa: S108 - an example path; use s3://conn@bucket/... in production
            type="string",
            description="Folder or fsspec URL for the files",
        ),
    },
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=5)},
) as dag:
    month = month_to_order()
    cover = ClearSkyOptimizeTilesOperator(task_id="optimize_tiles", geojson=AOI_FILE)
    cells = order_cells(cover.output)
    order_settings: dict[str, Any] = {
        "tile_guids": cells["tile_guids"],
        "minitile_guids": cells["minitile_guids"],
        "model": MODEL,
        "satellite_constellations": CONSTELLATIONS,
        "image_frequency": IMAGE_FREQUENCY,
        "date_from": month["first_day"],
        "date_to": month["last_day"],
    }
    estimate = ClearSkyEstimateOrderOperator(task_id="estimate_order", **order_settings)
    create = ClearSkyCreateOrderOperator(
        task_id="create_order",
        tile_deduplication=True,
        max_cost="{{ params.max_cost_eur }}",
        **order_settings,
    )
    estimate >> create

    wait_for_order = ClearSkyOrderStatusSensor(
        task_id="wait_for_order",
        order_guid=create.output,
        target_statuses=["Completed"],
        deferrable=True,
        poke_interval=POKE_SECONDS,
        max_wait=dt.timedelta(seconds=POKE_SECONDS * 4),
        timeout=dt.timedelta(days=14).total_seconds(),
    )
    wait_for_images = ClearSkyImageAvailabilitySensor(
        task_id="wait_for_images",
        geojson=AOI_FILE,
        date_from=month["first_day"],
        date_to=month["last_day"],
        model=MODEL,
        satellite_constellations=CONSTELLATIONS,
        bands=BANDS,
        deferrable=True,
        poke_interval=POKE_SECONDS,
        max_wait=dt.timedelta(seconds=POKE_SECONDS * 4),
        timeout=dt.timedelta(days=3).total_seconds(),
    )
    wait_for_order >> wait_for_images

    ClearSkyDownloadTileOperator.partial(
        task_id="download_tiles",
        tile_guid=cells["tile_guids"],
        minitile_guid=cells["minitile_guids"],
        model=MODEL,
        satellite_constellations=CONSTELLATIONS,
        bands=BANDS,
        resolution=20,
        destination="{{ params.destination }}/{{ ti.xcom_pull(task_ids='month_to_order', key='first_day')[:7] }}",
        filename="{kind}_{guid}_{date}.tif",
        order_guid=create.output,
        map_index_template="{{ task.date }}",
        max_active_tis_per_dag=2,
    ).expand(date=wait_for_images.output)


if __name__ == "__main__":
    dag.test()
