"""What tests need to run ``dag.test()`` on Airflow 3.0 as on 3.3 (both ends of the supported range).

Airflow 3.0's ``dag.test()`` differs in two ways that are Airflow's, not the provider's:

* it runs a DAG it never wrote to the database, so the DAG's Assets stay inactive and a task with an outlet fails
  with ``AirflowInactiveAssetInInletOrOutletException`` (3.1+ ``dag.test()`` syncs the DAG from its bundle);
* it leaves structlog unconfigured, so the in-process supervisor prints its own DEBUG lines although
  ``[logging] logging_level`` is INFO, and those lines carry raw message contents: ``MaskSecret(value=...)``
  (every secret as it is registered for masking) and ``SetRenderedFields`` before redaction. A real worker
  configures logging at the configured level (INFO by default) and does not print them.
"""

from __future__ import annotations

from pathlib import Path

from airflow_provider_clearsky._compat import airflow_version

AIRFLOW_30 = airflow_version().startswith("3.0.")


def register_dag_file(path: str | Path, bundle: str) -> None:
    """On Airflow 3.0, write the DAGs of ``path`` to the database as the DAG processor would (no-op on 3.1+)."""
    if not AIRFLOW_30:
        return
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.models.dagbag import DagBag

    DagBundlesManager().sync_bundles_to_db()
    DagBag(dag_folder=str(path), include_examples=False).sync_to_db(bundle, None)


def is_airflow_30_debug_request(line: str) -> bool:
    """A DEBUG line of Airflow 3.0's own in-process task-runner/supervisor message exchange."""
    return "[debug" in line and ("Sending request" in line or "Received message from task runner" in line)


def lines_holding(text: str, *needles: str) -> list[str]:
    """The lines of captured output that hold any of ``needles``, without Airflow 3.0's own DEBUG exchange lines.

    On Airflow 3.0 those lines must be there (the known leak): if they are gone, this exception is obsolete.
    """
    found = [line for line in text.splitlines() if any(needle in line for needle in needles)]
    if not AIRFLOW_30:
        return found
    airflow_debug = [line for line in found if is_airflow_30_debug_request(line)]
    assert airflow_debug, "Airflow 3.0 no longer prints the secret in its DEBUG exchange lines: drop this exception"
    return [line for line in found if line not in airflow_debug]
