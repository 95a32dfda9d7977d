"""Every shipped example imports cleanly, with no deprecated import, and follows the house rules."""

from __future__ import annotations

import ast
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from .conftest import EXAMPLE_FILES, EXAMPLES

EXPECTED = {
    "example_clearsky_monthly_monitoring",
    "example_clearsky_historical_backfill",
    "example_clearsky_tile_mode",
    "example_clearsky_order_housekeeping",
}
# Operators that spend money or change orders: their DAGs must never run twice at once.
ORDERING = ("ClearSkyCreateOrderOperator", "ClearSkyCancelOrderOperator")


def _dagbag_class() -> Any:
    try:
        from airflow.dag_processing.dagbag import DagBag  # Airflow 3.1+
    except ImportError:  # Airflow 3.0
        from airflow.models.dagbag import DagBag
    return DagBag


def _is_deprecation(warning: warnings.WarningMessage) -> bool:
    # Airflow 3.3's DeprecatedImportWarning is a FutureWarning, not a DeprecationWarning.
    return issubclass(warning.category, (DeprecationWarning, PendingDeprecationWarning, FutureWarning)) or (
        "deprecat" in str(warning.message).lower()
    )


@pytest.fixture(scope="module")
def dagbag() -> Any:
    DagBag = _dagbag_class()
    # Import the provider and Airflow first: warnings they raise on their own are not the examples' doing.
    import airflow_provider_clearsky.operators.download
    import airflow_provider_clearsky.operators.orders
    import airflow_provider_clearsky.sensors.availability
    import airflow_provider_clearsky.sensors.order_status  # noqa: F401

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = DagBag(dag_folder=str(EXAMPLES))  # [core] load_examples is off in the test harness
    bag.caught_warnings = caught
    return bag


def test_every_example_imports_without_errors(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == EXPECTED
    assert len(EXAMPLE_FILES) == len(EXPECTED)


def test_no_example_uses_a_deprecated_name(dagbag: Any) -> None:
    from_examples = [
        f"{Path(w.filename).name}:{w.lineno}: {w.category.__name__}: {w.message}"
        for w in dagbag.caught_warnings
        if _is_deprecation(w) and Path(w.filename).resolve().is_relative_to(EXAMPLES)
    ]
    assert from_examples == []


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_example_imports_with_deprecation_warnings_as_errors(path: Path) -> None:
    """A fresh interpreter importing the file with deprecation warnings raised as errors, for the example only."""
    code = (
        "import warnings, runpy, sys\n"
        # Airflow's own lazy imports first (on 3.0, `airflow.sdk.task` itself warns through common-compat).
        "from airflow.sdk import DAG, Asset, Param, Variable, task\n"
        "import airflow_provider_clearsky.operators.orders, airflow_provider_clearsky.operators.download\n"
        "import airflow_provider_clearsky.sensors.availability, airflow_provider_clearsky.sensors.order_status\n"
        "warnings.simplefilter('error', DeprecationWarning)\n"
        "warnings.simplefilter('error', FutureWarning)\n"
        "runpy.run_path(sys.argv[1], run_name='clearsky_example')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_example_follows_the_house_rules(dagbag: Any, path: Path) -> None:
    source = path.read_text()
    tree = ast.parse(source)
    dag = next(d for d in dagbag.dags.values() if Path(d.fileloc).resolve() == path.resolve())
    assert dag.doc_md and "clearsky_default" in dag.doc_md  # says what it does and which connection
    assert "clearsky" in dag.tags and "example" in dag.tags
    if any(type(task).__name__ in ORDERING for task in dag.tasks):
        assert dag.max_active_runs == 1
    main = [node for node in tree.body if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)]
    assert main and "dag.test()" in ast.unparse(main[0])
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    legacy = {
        m
        for m in imported
        if m.startswith("airflow.")
        and m.split(".")[1] in ("models", "operators", "decorators", "sensors", "utils", "datasets")
    }
    assert legacy == set(), "import Airflow names from airflow.sdk"


def test_the_deprecation_check_catches_a_deprecated_import(tmp_path: Path) -> None:
    """The check above is not vacuous: a pre-Airflow-3 import path fails it."""
    bad = tmp_path / "example_bad.py"
    bad.write_text("from airflow.operators.python import PythonOperator\n")
    code = "import warnings, runpy, sys\nwarnings.simplefilter('error', DeprecationWarning)\n"
    code += "warnings.simplefilter('error', FutureWarning)\nrunpy.run_path(sys.argv[1])\n"
    result = subprocess.run([sys.executable, "-c", code, str(bad)], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "deprecated" in result.stderr.lower()


def test_the_distributed_deployments_dags_import_without_errors() -> None:
    """``make test-distributed`` needs minutes to find a DAG it cannot load; this finds it in the quick suite."""
    folder = Path(__file__).resolve().parents[1] / "distributed" / "dags"
    bag = _dagbag_class()(dag_folder=str(folder))
    assert bag.import_errors == {}
    assert {"distributed_download", "distributed_upload_url", "distributed_mapped_downloads"} <= set(bag.dag_ids)
