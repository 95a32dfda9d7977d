"""Apache Airflow provider for the ClearSKY Vision API."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

PACKAGE_NAME = "airflow-provider-clearsky"

# Class paths registered with Airflow. A test imports each one, so a typo cannot break registration silently.
_HOOK = "airflow_provider_clearsky.hooks.clearsky.ClearSkyHook"


def get_provider_info() -> dict[str, Any]:
    """Describe the provider to Airflow's ProvidersManager (the ``apache_airflow_provider`` entry point)."""
    from airflow_provider_clearsky.connection import UI_FIELD_BEHAVIOUR, conn_fields

    return {
        "package-name": PACKAGE_NAME,
        "name": "ClearSKY Vision",
        "description": "Order, wait for and download cloud-free Sentinel-2 imagery from ClearSKY Vision.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "ClearSKY Vision",
                "external-doc-url": "https://docs.clearsky.vision",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": "ClearSKY Vision",
                "python-modules": ["airflow_provider_clearsky.hooks.clearsky"],
            }
        ],
        "operators": [
            {
                "integration-name": "ClearSKY Vision",
                "python-modules": [
                    "airflow_provider_clearsky.operators.orders",
                    "airflow_provider_clearsky.operators.cancel",
                    "airflow_provider_clearsky.operators.tiles",
                    "airflow_provider_clearsky.operators.download",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "ClearSKY Vision",
                "python-modules": [
                    "airflow_provider_clearsky.sensors.order_status",
                    "airflow_provider_clearsky.sensors.availability",
                ],
            }
        ],
        "triggers": [
            {
                "integration-name": "ClearSKY Vision",
                "python-modules": [
                    "airflow_provider_clearsky.triggers.order_status",
                    "airflow_provider_clearsky.triggers.availability",
                ],
            }
        ],
        "extra-links": ["airflow_provider_clearsky.links.ClearSkyOrderLink"],
        "connection-types": [
            {
                "connection-type": "clearsky",
                "hook-class-name": _HOOK,
                "hook-name": "ClearSKY Vision",
                "ui-field-behaviour": {key.replace("_", "-"): value for key, value in UI_FIELD_BEHAVIOUR.items()},
                "conn-fields": conn_fields(),
            }
        ],
    }
