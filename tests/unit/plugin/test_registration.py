"""The plugin is registered so that installing the package is enough, and loading it costs a task nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_clearsky.plugin import ClearSkyPlugin


def test_airflow_plugins_lists_the_clearsky_plugin_with_its_app_and_views(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({"AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "plugins", "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    plugins = json.loads(result.stdout[result.stdout.index("[{") :])
    [plugin] = [p for p in plugins if p["name"] == "clearsky"]
    assert "airflow_provider_clearsky.plugin:ClearSkyPlugin" in plugin["source"]  # from the entry point
    assert plugin["fastapi_apps"] == [
        {"app": "fastapi.applications.FastAPI", "url_prefix": "/clearsky", "name": "ClearSKY"}
    ]


def test_ui_entries_nav_item_and_tabs_on_dag_runs_and_task_instances() -> None:
    views = {view["destination"]: view for view in ClearSkyPlugin.external_views}
    assert views["nav"]["name"] == "ClearSKY" and views["nav"]["href"] == "clearsky/"
    assert views["dag_run"]["href"] == "clearsky/runs/{DAG_ID}/{RUN_ID}"
    assert views["task_instance"]["href"].startswith("clearsky/runs/{DAG_ID}/{RUN_ID}?task_id={TASK_ID}")
    assert all(not view["href"].startswith("/") for view in views.values())  # relative to Airflow's base URL


def test_ui_entries_are_valid_for_airflow_3_1_and_later() -> None:
    plugins = pytest.importorskip("airflow.api_fastapi.core_api.datamodels.plugins")
    if not hasattr(plugins, "ExternalViewResponse"):
        pytest.skip("Airflow 3.0 has no external views; the pages are reachable at their URL")
    for view in ClearSkyPlugin.external_views:
        plugins.ExternalViewResponse.model_validate(view)


PLUGIN_IMPORT = """
import sys
import airflow.plugins_manager  # what Airflow has loaded anyway when it loads plugins
already = set(sys.modules)
import airflow_provider_clearsky.plugin
heavy = ["fastapi", "airflow_provider_clearsky.plugin.app", "airflow_provider_clearsky.hooks.clearsky", "httpx",
         "sqlalchemy", "airflow_provider_clearsky.models"]
print(",".join(name for name in heavy if name in sys.modules and name not in already))
"""


def test_loading_the_plugin_imports_nothing_heavy(tmp_path: Path) -> None:
    """Airflow loads plugins in every process, task processes included: the app is built only when read."""
    result = subprocess.run(
        [sys.executable, "-c", PLUGIN_IMPORT],
        capture_output=True,
        text=True,
        check=True,
        env={"AIRFLOW_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
    )
    assert result.stdout.strip() == ""
