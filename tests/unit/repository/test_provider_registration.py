"""The provider is found by Airflow's own ProvidersManager and every class path it lists imports."""

from __future__ import annotations

import importlib

import pytest

from airflow_provider_clearsky import get_provider_info


def _import(path: str) -> object:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_providers_manager_registers_the_package_and_connection_type():
    from airflow.providers_manager import ProvidersManager

    assert "airflow-provider-clearsky" in ProvidersManager().providers
    try:  # Airflow 3.2+: hooks are looked up by the task runtime's manager
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime as HookManager
    except ImportError:
        HookManager = ProvidersManager
    hook_info = HookManager().hooks["clearsky"]
    assert hook_info is not None
    assert hook_info.hook_class_name == "airflow_provider_clearsky.hooks.clearsky.ClearSkyHook"
    assert hook_info.connection_id_attribute_name == "clearsky_conn_id"


def test_connection_form_behaviour_is_registered():
    from airflow.providers_manager import ProvidersManager

    from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook

    declared = ClearSkyHook.get_ui_field_behaviour()
    registered = get_provider_info()["connection-types"][0]["ui-field-behaviour"]
    assert registered == {key.replace("_", "-"): value for key, value in declared.items()}
    assert declared["relabeling"]["password"] == "API Key"
    assert declared["hidden_fields"] == ["schema", "login", "port"]
    behaviours = ProvidersManager().field_behaviours
    # Airflow 3.0 builds the form from the hook class only when flask_appbuilder is installed.
    if behaviours:
        assert behaviours["clearsky"] == declared


def test_every_listed_module_and_class_imports():
    info = get_provider_info()
    for group in ("hooks", "operators", "sensors", "triggers"):
        for entry in info.get(group, []):
            for module in entry["python-modules"]:
                importlib.import_module(module)
    for path in [c["hook-class-name"] for c in info["connection-types"]] + info.get("extra-links", []):
        assert isinstance(_import(path), type), path
    for trigger in info.get("triggers", []):
        for path in trigger.get("python-modules", []):
            importlib.import_module(path)


@pytest.mark.parametrize(
    "path",
    [
        "airflow_provider_clearsky.operators.orders.ClearSkyEstimateOrderOperator",
        "airflow_provider_clearsky.operators.orders.ClearSkyCreateOrderOperator",
        "airflow_provider_clearsky.operators.cancel.ClearSkyCancelOrderOperator",
        "airflow_provider_clearsky.operators.tiles.ClearSkySearchTilesOperator",
        "airflow_provider_clearsky.operators.tiles.ClearSkyOptimizeTilesOperator",
        # the import path the first release gave them still works
        "airflow_provider_clearsky.operators.orders.ClearSkyCancelOrderOperator",
        "airflow_provider_clearsky.operators.orders.ClearSkyOptimizeTilesOperator",
        "airflow_provider_clearsky.operators.download.ClearSkyDownloadCompositeOperator",
        "airflow_provider_clearsky.operators.download.ClearSkyDownloadTileOperator",
        "airflow_provider_clearsky.sensors.order_status.ClearSkyOrderStatusSensor",
        "airflow_provider_clearsky.sensors.availability.ClearSkyImageAvailabilitySensor",
        "airflow_provider_clearsky.triggers.order_status.ClearSkyOrderStatusTrigger",
        "airflow_provider_clearsky.triggers.availability.ClearSkyImageAvailabilityTrigger",
    ],
)
def test_public_classes_live_in_registered_modules(path):
    module = path.rpartition(".")[0]
    info = get_provider_info()
    registered = [m for group in ("operators", "sensors", "triggers") for e in info[group] for m in e["python-modules"]]
    assert module in registered
    assert isinstance(_import(path), type)


def test_extra_link_is_registered_with_airflow():
    from airflow.providers_manager import ProvidersManager

    assert "airflow_provider_clearsky.links.ClearSkyOrderLink" in ProvidersManager().extra_links_class_names


def test_package_name_is_the_canonical_distribution_name():
    from importlib.metadata import distribution

    assert get_provider_info()["package-name"] == distribution("airflow-provider-clearsky").metadata["Name"]


@pytest.mark.parametrize("field", ["package-name", "name", "description", "versions", "connection-types"])
def test_provider_info_has_required_fields(field):
    assert get_provider_info()[field]
