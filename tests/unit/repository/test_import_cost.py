"""A DAG file that imports our operators and sensors must not pay for the hook, the models or shapely.

Timing lives in benchmarks/parse_cost.py; this guards the cause (what gets imported), which does not vary.
"""

from __future__ import annotations

import subprocess
import sys

DAG_FILE_IMPORTS = """
import sys
from airflow.sdk import DAG, BaseOperator, BaseSensorOperator
deferred = ["shapely", "numpy", "airflow_provider_clearsky.hooks.clearsky", "airflow_provider_clearsky.models.orders",
            "airflow_provider_clearsky.models.imagery", "airflow_provider_clearsky.models.catalog",
            "airflow_provider_clearsky.emulator.app", "fastapi", "openlineage",
            "airflow_provider_clearsky.utils.openlineage", "airflow.triggers.base",
            "airflow_provider_clearsky.triggers.order_status", "airflow_provider_clearsky.triggers.availability"]
already = {name for name in deferred if name in sys.modules}  # what Airflow itself loads (fastapi on 3.0)
from airflow_provider_clearsky.operators.orders import ClearSkyCreateOrderOperator
from airflow_provider_clearsky.operators.cancel import ClearSkyCancelOrderOperator
from airflow_provider_clearsky.operators.download import ClearSkyDownloadCompositeOperator
from airflow_provider_clearsky.sensors.order_status import ClearSkyOrderStatusSensor
from airflow_provider_clearsky.sensors.availability import ClearSkyImageAvailabilitySensor
from airflow_provider_clearsky.links import ClearSkyOrderLink
print(",".join(name for name in deferred if name in sys.modules and name not in already))
"""


def test_dag_file_imports_load_nothing_heavy(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", DAG_FILE_IMPORTS],
        capture_output=True,
        text=True,
        check=True,
        env={"AIRFLOW_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert result.stdout.strip() == ""
