"""The DAGs of ``make test-distributed`` (tests/distributed/run.py): each scenario's tasks, driven by run conf.

The driver creates the orders, arms the emulator's faults, moves its clock and kills processes; these DAGs only
do what a user's DAG does. Every retry is quick so that a killed worker's task is retried within seconds.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_clearsky.operators.download import ClearSkyDownloadCompositeOperator
from airflow_provider_clearsky.operators.orders import ClearSkyCreateOrderOperator
from airflow_provider_clearsky.sensors.order_status import ClearSkyOrderStatusSensor

STRATUS2 = ["Sentinel1", "Sentinel2", "Landsat89"]
# A ~3.5 x 5.5 km field near Frankfurt; downloads take a part of it.
FIELD = "GEOMETRYCOLLECTION (POLYGON ((8.60 50.10, 8.65 50.10, 8.65 50.15, 8.60 50.15, 8.60 50.10)))"
INNER = "POLYGON ((8.61 50.11, 8.64 50.11, 8.64 50.14, 8.61 50.14, 8.61 50.11))"
POOL = "clearsky_api"  # sized by the driver to the account's MaxConcurrentConnections
QUICK_RETRIES = {"retries": 2, "retry_delay": dt.timedelta(seconds=2)}
START = pendulum.datetime(2025, 1, 1, tz="UTC")


def scenario_dag(dag_id: str, doc: str) -> DAG:
    return DAG(
        dag_id=dag_id,
        doc_md=doc,
        schedule=None,
        start_date=START,
        catchup=False,
        is_paused_upon_creation=False,
        max_active_tasks=256,
        tags=["clearsky", "distributed-test"],
        default_args=QUICK_RETRIES,
    )


@task
def from_conf(name: str, params: Any = None, dag_run: Any = None) -> Any:
    return dag_run.conf[name]


with scenario_dag("distributed_waits", "Deferred order-status waits: one per GUID in conf['guids']"):
    ClearSkyOrderStatusSensor.partial(
        task_id="wait",
        deferrable=True,
        poke_interval=5,
        max_wait=dt.timedelta(seconds=5),
        timeout=dt.timedelta(hours=1).total_seconds(),
    ).expand(order_guid=from_conf("guids"))


with scenario_dag("distributed_create", "One historical order, created once whatever happens to the worker"):
    ClearSkyCreateOrderOperator(
        task_id="create_order",
        wkt="{{ dag_run.conf['wkt'] }}",
        model="Stratus2",
        satellite_constellations=STRATUS2,
        image_frequency=7,
        date_from="{{ dag_run.conf['date_from'] }}",
        date_to="{{ dag_run.conf['date_to'] }}",
        max_cost=100,
    )


# What every download of these DAGs asks for; each DAG adds where the file goes and which date.
COMPOSITE = {
    "task_id": "download",
    "wkt": INNER,
    "bands": "rgb",
    "model": "Stratus2",
    "satellite_constellations": STRATUS2,
    "order_guid": "{{ dag_run.conf['order_guid'] }}",
    "pool": POOL,
}
TO_CONF_DESTINATION = {"destination": "{{ dag_run.conf['destination'] }}"}


with scenario_dag("distributed_download", "One composite to conf['destination'] (an s3://aws_default@bucket URL)"):
    ClearSkyDownloadCompositeOperator(**COMPOSITE, **TO_CONF_DESTINATION, date="{{ dag_run.conf['date'] }}")


with scenario_dag("distributed_upload_url", "One composite PUT by the API to a presigned S3 URL (a Variable)"):
    ClearSkyDownloadCompositeOperator(
        **COMPOSITE, upload_url="{{ var.value.clearsky_upload_url }}", date="{{ dag_run.conf['date'] }}"
    )


with scenario_dag("distributed_mapped_downloads", "One download per date in conf['dates'], through the pool"):
    ClearSkyDownloadCompositeOperator.partial(**COMPOSITE, **TO_CONF_DESTINATION).expand(date=from_conf("dates"))
