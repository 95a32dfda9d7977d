"""OpenLineage datasets of the ClearSKY operators: the order a task placed or read, the files it wrote.

Only ``get_openlineage_facets_on_complete`` imports this module, and Airflow's OpenLineage listener calls
that method only when ``apache-airflow-providers-openlineage`` is installed: without it, nothing here (nor
OpenLineage itself) is ever imported.

Naming: an order is ``orders/<guid>`` in the namespace of the API's base URL (the service that holds it);
a file follows Airflow's own translation of file Assets (``file://`` and the path; ``scheme://bucket`` and
the key for object stores), so lineage tools join these datasets with Airflow's Asset lineage.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage


def file_dataset_name(uri: str) -> tuple[str, str]:
    """Return OpenLineage's ``(namespace, name)`` of a file URI, without any connection id or credentials."""
    parts = urlsplit(uri)
    host = parts.netloc.rpartition("@")[2]  # s3://conn_id@bucket/key names the bucket, not the connection
    if parts.scheme in ("", "file"):
        return f"file://{host}", parts.path
    return f"{parts.scheme}://{host}", parts.path.lstrip("/")


def order_dataset_name(base_url: str, order_guid: str) -> tuple[str, str]:
    """Return OpenLineage's ``(namespace, name)`` of a ClearSKY order."""
    return base_url.rstrip("/"), f"orders/{order_guid.lower()}"


def operator_lineage(
    inputs: Iterable[tuple[str, str]], outputs: Iterable[tuple[str, str]]
) -> OperatorLineage[Any, Any]:
    """Build the ``OperatorLineage`` of a task from ``(namespace, name)`` pairs."""
    from airflow.providers.common.compat.openlineage.facet import Dataset
    from airflow.providers.openlineage.extractors import OperatorLineage

    def datasets(pairs: Iterable[tuple[str, str]]) -> list[Any]:
        return [Dataset(namespace=namespace, name=name) for namespace, name in pairs]

    return OperatorLineage(inputs=datasets(inputs), outputs=datasets(outputs))
