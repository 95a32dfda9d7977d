"""Parse cost: what importing our operators and sensors adds to a DAG file, in fresh interpreters.

Each sample is a new Python process that imports ``airflow.sdk`` (the baseline every DAG file pays) and
then, for the measured variants, the classes a DAG file would import. The figure is the median extra time
over the baseline, measured inside each process with ``perf_counter`` around the second import only, so
interpreter start-up noise does not enter it. The dbt Cloud provider's operator and sensor are measured
the same way in the same run, as a reference.

Run: ``.venv/bin/python benchmarks/parse_cost.py [samples]`` (``make bench`` installs the reference).
Targets: ours adds < 20 ms, and less than the reference.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile

VARIANTS = {
    "airflow.sdk only (baseline)": "",
    "airflow-provider-clearsky": (
        "from airflow_provider_clearsky.operators.orders import (ClearSkyCreateOrderOperator, "
        "ClearSkyEstimateOrderOperator)\n"
        "from airflow_provider_clearsky.operators.cancel import ClearSkyCancelOrderOperator\n"
        "from airflow_provider_clearsky.operators.tiles import ClearSkySearchTilesOperator\n"
        "from airflow_provider_clearsky.operators.download import (ClearSkyDownloadCompositeOperator, "
        "ClearSkyDownloadTileOperator)\n"
        "from airflow_provider_clearsky.sensors.order_status import ClearSkyOrderStatusSensor\n"
        "from airflow_provider_clearsky.sensors.availability import ClearSkyImageAvailabilitySensor\n"
    ),
    "dbt Cloud provider (reference)": (
        "from airflow.providers.dbt.cloud.operators.dbt import DbtCloudRunJobOperator\n"
        "from airflow.providers.dbt.cloud.sensors.dbt import DbtCloudJobRunSensor\n"
    ),
}

PROGRAM = """
import time
import airflow.sdk
from airflow.sdk import DAG
start = time.perf_counter()
{imports}
print(time.perf_counter() - start)
"""

HEAVY = ("shapely", "numpy", "rasterio", "fastapi", "uvicorn", "airflow_provider_clearsky.emulator")


def sample(imports: str, home: str) -> float:
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM.format(imports=imports)],
        capture_output=True,
        text=True,
        check=True,
        env={"AIRFLOW_HOME": home, "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "0"},
    )
    return float(result.stdout.strip().splitlines()[-1])


def heavy_modules_loaded(imports: str, home: str) -> list[str]:
    probe = f"import sys\nimport airflow.sdk\n{imports}\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env={"AIRFLOW_HOME": home, "PATH": "/usr/bin:/bin"},
    )
    return [name for name in result.stdout.strip().split(",") if name]


def main() -> None:
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    with tempfile.TemporaryDirectory() as home:
        for imports in VARIANTS.values():  # warm the bytecode caches so every variant is measured warm
            sample(imports, home)
        medians = {}
        for name, imports in VARIANTS.items():
            try:
                times = [sample(imports, home) for _ in range(samples)]
            except subprocess.CalledProcessError as error:
                print(f"{name}: could not import ({error.stderr.strip().splitlines()[-1]})")
                continue
            medians[name] = statistics.median(times) * 1000
        ours = medians.get("airflow-provider-clearsky")
        reference = medians.get("dbt Cloud provider (reference)")
        print(f"Import cost on top of `import airflow.sdk`, median of {samples} fresh interpreters:")
        for name, ms in medians.items():
            print(f"  {name:32s} {ms:8.2f} ms")
        if ours is not None and reference:
            print(f"  ratio ours / reference: {ours / reference:.3f}")
        heavy = heavy_modules_loaded(VARIANTS["airflow-provider-clearsky"], home)
        print(f"  heavy modules loaded by our imports: {heavy or 'none'}")
        if ours is not None:
            verdict = "met" if ours < 20 and (reference is None or ours < reference) else "NOT met"
            print(f"Target (< 20 ms and below the reference): {verdict}")


if __name__ == "__main__":
    main()
