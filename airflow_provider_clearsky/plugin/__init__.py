"""The ClearSKY plugin: orders, spend and imagery in the Airflow UI.

Registered through the ``airflow.plugins`` entry point, the one source every supported Airflow (3.0 to 3.3)
reads by default (a provider info ``plugins`` entry is read only with ``[core] lazy_discover_providers =
False``, and both at once would register the plugin twice). Installing the package is enough.

* A FastAPI app mounted in the api-server at ``/clearsky`` (pages and JSON, every route behind the
  api-server's auth manager).
* From Airflow 3.1, external views: a **ClearSKY** item in the navigation and a **ClearSKY** tab on DAG-run
  and task-instance pages. Airflow 3.0 has no such UI entries; the pages are reachable at their URL.

Airflow loads plugins in every process, task processes included, so this module imports nothing but the
plugin base class: the app is built on first access, in the api-server.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/clearsky"


class _LazyFastApiApps:
    """``fastapi_apps``, built the first time Airflow reads it (only the api-server and ``airflow plugins``)."""

    def __get__(self, instance: object, owner: type | None = None) -> list[dict[str, Any]]:
        from airflow_provider_clearsky.plugin.app import fastapi_apps

        return fastapi_apps(URL_PREFIX)


class ClearSkyPlugin(AirflowPlugin):
    """Orders, spend and imagery per ClearSKY connection; a ClearSKY tab on DAG runs and task instances."""

    name = "clearsky"
    fastapi_apps = _LazyFastApiApps()  # a list, built on first read
    # Relative hrefs: the UI resolves them against Airflow's base URL (no leading slash, as Airflow documents).
    external_views = [
        {
            "name": "ClearSKY",
            "href": "clearsky/",
            "url_route": "clearsky",
            "destination": "nav",
        },
        {
            "name": "ClearSKY",
            "href": "clearsky/runs/{DAG_ID}/{RUN_ID}",
            "url_route": "clearsky_run",
            "destination": "dag_run",
        },
        {
            "name": "ClearSKY",
            "href": "clearsky/runs/{DAG_ID}/{RUN_ID}?task_id={TASK_ID}&map_index={MAP_INDEX}",
            "url_route": "clearsky_task",
            "destination": "task_instance",
        },
    ]
