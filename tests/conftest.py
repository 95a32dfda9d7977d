"""Test harness shared by every test: a throw-away Airflow home with its own SQLite database.

The environment is set before Airflow is imported, so no test touches a real Airflow installation.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator

import pytest

_AIRFLOW_HOME = tempfile.mkdtemp(prefix="clearsky-airflow-home-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{_AIRFLOW_HOME}/airflow.db")
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# dag.test() re-reads DAGs from their bundle, so every DAG a test runs lives in a file in one of these folders:
# the shipped examples, the tests' own DAG files, and a scratch folder where tests write DAG files on the fly.
SCRATCH_DAGS = os.path.join(_AIRFLOW_HOME, "scratch_dags")
os.makedirs(SCRATCH_DAGS, exist_ok=True)
_LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"
os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps(
    [
        {
            "name": "clearsky_examples",
            "classpath": _LOCAL_BUNDLE,
            "kwargs": {"path": os.path.join(_REPO, "example_dags")},
        },
        {"name": "test_dags", "classpath": _LOCAL_BUNDLE, "kwargs": {"path": os.path.join(_REPO, "tests", "dags")}},
        {"name": "scratch_dags", "classpath": _LOCAL_BUNDLE, "kwargs": {"path": SCRATCH_DAGS}},
    ]
)
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", SCRATCH_DAGS)
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")

FAKE_API_KEY = "test-key-7f3a9c2e-not-a-real-key"


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """An initialised metadata database, created once per session (needed by ``dag.test()``)."""
    from airflow.utils.db import initdb

    initdb()


@pytest.fixture
def clearsky_connection(monkeypatch: pytest.MonkeyPatch) -> str:
    """A ``clearsky_default`` connection to a loopback address that nothing listens on (for unit tests)."""
    uri = json.dumps({"conn_type": "clearsky", "host": "http://127.0.0.1:9", "password": FAKE_API_KEY})
    monkeypatch.setenv("AIRFLOW_CONN_CLEARSKY_DEFAULT", uri)
    return "clearsky_default"


@pytest.fixture
def write_dag(airflow_db: None) -> Iterator[object]:
    """Write a DAG file into the scratch bundle and load its DAG, ready for ``dag.test()``.

    Usage: ``dag = write_dag("my_dag", source_text)`` where the source defines a DAG with id ``my_dag``.
    """
    import importlib.util
    import textwrap

    written: list[str] = []

    def write(dag_id: str, source: str) -> object:
        path = os.path.join(SCRATCH_DAGS, f"{dag_id}.py")
        with open(path, "w") as handle:
            handle.write(textwrap.dedent(source))
        written.append(path)
        spec = importlib.util.spec_from_file_location(f"scratch_{dag_id}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for value in vars(module).values():
            if getattr(value, "dag_id", None) == dag_id and hasattr(value, "test"):
                return value
        raise AssertionError(f"{path} defines no DAG with id {dag_id!r}")

    yield write
    for path in written:
        os.remove(path)


#: The emulator's fixtures: a test that uses one (directly or through another fixture) talks HTTP on 127.0.0.1.
EMULATOR_FIXTURES = frozenset({"clearsky_emulator", "clearsky_emulator_server", "clearsky_emulator_factory"})
#: Folders whose every test talks HTTP to an emulator: the emulator-backed tests, some of which start their own
#: emulator (e.g. through the CLI), and the system tests (example DAG runs, the demo, standalone Airflow, a browser).
INTEGRATION_FOLDERS = ("tests/integration/", "tests/system/")
#: Modules of those folders that talk HTTP only through an emulator fixture (the rest of them checks files).
MODULES_HTTP_BY_FIXTURE = ("tests/system/test_dagbag.py", "tests/system/test_docs_code.py")


def talks_http(nodeid: str, fixturenames: Iterable[str]) -> bool:
    """Whether a test talks HTTP: it uses an emulator fixture, or it lives in an integration folder."""
    if EMULATOR_FIXTURES.intersection(fixturenames):
        return True
    return nodeid.startswith(INTEGRATION_FOLDERS) and not nodeid.startswith(MODULES_HTTP_BY_FIXTURE)


@pytest.hookimpl(tryfirst=True)  # before pytest's own -m selection, which reads the markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``integration`` every test that talks HTTP to the emulator, so ``-m "not integration"`` leaves it out.

    A ``pytestmark`` in a conftest does nothing (pytest reads it in test modules only); this hook sees each
    test's folder and whole fixture closure instead.
    """
    for item in items:
        if talks_http(item.nodeid, getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
