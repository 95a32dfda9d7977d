"""Fixtures for running the shipped example DAGs end to end against the emulator."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_clearsky._compat import airflow_version

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"
EXAMPLE_FILES = sorted(EXAMPLES.glob("example_*.py"))


def load_example(path: Path) -> Any:
    """Import an example file afresh (it reads CLEARSKY_EXAMPLE_POKE_SECONDS at import) and return its DAG."""
    spec = importlib.util.spec_from_file_location(f"clearsky_example_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


@pytest.fixture
def emulator(clearsky_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The emulator behind ``clearsky_default``, with the examples' waits checking every second."""
    conn = clearsky_emulator.connection_dict()
    conn["extra"] = {"max_retries": 2, "backoff_initial": 0.05, "backoff_max": 0.2}
    monkeypatch.setenv("AIRFLOW_CONN_CLEARSKY_DEFAULT", json.dumps(conn))
    monkeypatch.setenv("CLEARSKY_EXAMPLE_POKE_SECONDS", "1")
    # The worker's clock is the API's, as in production: the create operator compares billing months on both.
    from airflow_provider_clearsky.operators import orders

    monkeypatch.setattr(orders, "utc_now", clearsky_emulator.control.now)
    return clearsky_emulator


@pytest.fixture
def example(airflow_db: None, emulator: Any) -> Any:
    """``example("example_clearsky_...")``: the DAG of that shipped example file, ready for ``dag.test()``."""

    def load(name: str) -> Any:
        path = EXAMPLES / f"{name}.py"
        if airflow_version().startswith("3.0."):
            # Airflow 3.0's dag.test() does not write the DAG to the database, so its Assets stay inactive and a
            # task with an outlet fails; write it as the DAG processor would (3.1+ dag.test() does this itself).
            from airflow.dag_processing.bundles.manager import DagBundlesManager
            from airflow.models.dagbag import DagBag

            DagBundlesManager().sync_bundles_to_db()
            DagBag(dag_folder=str(path), include_examples=False).sync_to_db("clearsky_examples", None)
        return load_example(path)

    return load


def xcoms(dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> list[Any]:
    """The XCom values of a task in a run (one per map index, in map-index order)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(XComModel)
            .where(XComModel.dag_id == dag_id, XComModel.run_id == run_id)
            .where(XComModel.task_id == task_id, XComModel.key == key)
            .order_by(XComModel.map_index)
        ).all()
        return [XComModel.deserialize_value(row) for row in rows]


def task_states(run: Any) -> dict[str, list[str]]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        tis = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == run.dag_id, TaskInstance.run_id == run.run_id)
        ).all()
        states: dict[str, list[str]] = {}
        for ti in sorted(tis, key=lambda t: (t.task_id, t.map_index)):
            states.setdefault(ti.task_id, []).append(str(ti.state))
        return states


def rendered_map_indexes(run: Any, task_id: str) -> list[str | None]:
    """The UI labels of a mapped task's instances (``map_index_template``), in map-index order."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        tis = session.scalars(
            select(TaskInstance)
            .where(TaskInstance.dag_id == run.dag_id, TaskInstance.run_id == run.run_id)
            .where(TaskInstance.task_id == task_id)
            .order_by(TaskInstance.map_index)
        ).all()
        return [ti.rendered_map_index for ti in tis]
