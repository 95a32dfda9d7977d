"""OpenLineage: the download operators report the files they wrote, the create operator the order it placed.

With ``apache-airflow-providers-openlineage`` installed the real classes are used; without it, stand-ins of
the two names the provider uses (``OperatorLineage``, ``Dataset``) take their place, so the mapping is
tested in every environment. Importing and running the operators never imports OpenLineage
(``tests/unit/repository/test_import_cost.py`` checks the import side).
"""

from __future__ import annotations

import importlib
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_clearsky.emulator.handle import EmulatorHandle
from airflow_provider_clearsky.utils.openlineage import file_dataset_name, order_dataset_name
from tests.support.orders_support import DictStore, FakeTI, context

from .test_download import composite, emu, order_guid  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration


@dataclass
class _Dataset:
    namespace: str
    name: str
    facets: dict[str, Any] = field(default_factory=dict)


@dataclass
class _OperatorLineage:
    inputs: list[Any] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)


@pytest.fixture
def lineage_classes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real OpenLineage classes when installed, else stand-ins under their module names."""
    try:
        importlib.import_module("airflow.providers.openlineage.extractors")
        importlib.import_module("airflow.providers.common.compat.openlineage.facet")
    except ImportError:
        extractors = types.ModuleType("airflow.providers.openlineage.extractors")
        extractors.OperatorLineage = _OperatorLineage  # type: ignore[attr-defined]
        facet = types.ModuleType("airflow.providers.common.compat.openlineage.facet")
        facet.Dataset = _Dataset  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "airflow.providers.openlineage.extractors", extractors)
        monkeypatch.setitem(sys.modules, "airflow.providers.common.compat.openlineage.facet", facet)


def pairs(datasets: list[Any]) -> list[tuple[str, str]]:
    return [(dataset.namespace, dataset.name) for dataset in datasets]


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("file:///data/imagery/a.tif", ("file://", "/data/imagery/a.tif")),
        ("s3://aws_default@bucket/prefix/a.tif", ("s3://bucket", "prefix/a.tif")),
        ("gs://bucket/a.tif", ("gs://bucket", "a.tif")),
        ("memory://folder/a.tif", ("memory://folder", "a.tif")),
    ],
)
def test_file_dataset_names_follow_airflows_asset_translation(uri: str, expected: tuple[str, str]) -> None:
    assert file_dataset_name(uri) == expected


def test_order_dataset_name() -> None:
    guid = "3F2504E0-4F89-41D3-9A0C-0305E82C3301"
    assert order_dataset_name("https://api.example/", guid) == ("https://api.example", f"orders/{guid.lower()}")


def test_download_reports_its_file_and_the_order(
    emu: EmulatorHandle,  # noqa: F811
    order_guid: str,  # noqa: F811
    tmp_path: Path,
    lineage_classes: None,
) -> None:
    task = composite(destination=str(tmp_path), order_guid=order_guid)
    uri = task.execute({})
    lineage = task.get_openlineage_facets_on_complete(None)
    assert pairs(lineage.outputs) == [file_dataset_name(uri)]
    assert pairs(lineage.inputs) == [(emu.url.rstrip("/"), f"orders/{order_guid.lower()}")]
    # a fresh instance that wrote nothing reports nothing
    assert pairs(composite(destination=str(tmp_path)).get_openlineage_facets_on_complete(None).outputs) == []


def test_create_reports_the_order(emu: EmulatorHandle, lineage_classes: None) -> None:  # noqa: F811
    from .test_orders import create_op

    task = create_op(emu)
    guid = task.execute(context(FakeTI(1), DictStore()))
    lineage = task.get_openlineage_facets_on_complete(None)
    assert pairs(lineage.outputs) == [(emu.url.rstrip("/"), f"orders/{guid.lower()}")]
    assert lineage.inputs == []
