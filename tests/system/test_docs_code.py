"""Every Python block of README.md and docs/*.md runs: each compiles, and each block that defines a DAG is
loaded from a file (as the DAG processor would) and run with ``dag.test()`` against the emulator on a fast
clock. This is what keeps the docs from drifting: a renamed argument or a broken template fails here."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_clearsky._compat import airflow_version

from .conftest import task_states, utc

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FIELDS_WKT = "POLYGON ((10.30 55.35, 10.33 55.35, 10.33 55.365, 10.30 55.365, 10.30 55.35))"
NO_LOGICAL_DATE = airflow_version().startswith("3.3")  # dag.test(logical_date=None) is Airflow 3.3's


def python_blocks() -> list[tuple[str, str]]:
    """(``file#n``, source) of every ```python block."""
    found = []
    for path in DOCS:
        for number, source in enumerate(re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)):
            found.append((f"{path.relative_to(ROOT)}#{number}", source))
    return found


BLOCKS = python_blocks()


def dag_id_of(source: str) -> str | None:
    match = re.search(r"with DAG\(\s*(?:dag_id=)?[\"']([\w.-]+)[\"']", source)
    return match.group(1) if match else None


@pytest.mark.parametrize(("where", "source"), BLOCKS, ids=[where for where, _ in BLOCKS])
def test_every_python_block_compiles(where: str, source: str) -> None:
    compile(source, where, "exec")


# ----------------------------------------------------------------------------- DAG blocks, run


@dataclass
class DocRun:
    """How a DAG block of the docs is run: the emulator's clock, what to set up, and what must come out."""

    now: dt.datetime
    run_after: dt.datetime
    logical_date: dt.datetime  # used below Airflow 3.3, which cannot test a run without a logical date
    order_from: str
    files_in: str  # the folder under the destination the window names
    setup: Callable[[Any, pytest.MonkeyPatch], None] = field(default=lambda emulator, monkeypatch: None)
    orders: int = 1


def frankfurt_order(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The download-only example downloads from an order placed elsewhere: place it, name it in a Variable."""
    from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook
    from airflow_provider_clearsky.models import OrderRequest

    request = OrderRequest(
        wkt="POLYGON ((8.61 50.11, 8.64 50.11, 8.64 50.14, 8.61 50.14, 8.61 50.11))",
        model="Stratus2",
        satellite_constellations=["Sentinel1", "Sentinel2", "Landsat89"],
        image_frequency=7,
        date_from="2025-05-01",
    )
    guid = ClearSkyHook("clearsky_default").create_order(request).guid
    monkeypatch.setenv("AIRFLOW_VAR_CLEARSKY_FRANKFURT_ORDER", guid)


RUNS: dict[str, DocRun] = {
    # README: the minimal monthly pipeline, triggered without a logical date on 12 June: May.
    "clearsky_last_month": DocRun(
        now=utc(2025, 6, 12, 9),
        run_after=utc(2025, 6, 12, 9),
        logical_date=utc(2025, 6, 1),
        order_from="2025-05-01",
        files_in="2025-05",
    ),
    # docs/operators-orders.md: the weekly DAG (Europe/Copenhagen), Monday 16 June: the week 9..15 June.
    "clearsky_last_week": DocRun(
        now=utc(2025, 6, 16, 9),
        run_after=utc(2025, 6, 16, 9),
        logical_date=utc(2025, 6, 16, 4),
        order_from="2025-06-01",
        files_in="2025-W24",
    ),
    # docs/operators-download.md: download every ready date of last month from an existing order.
    "clearsky_monthly_download": DocRun(
        now=utc(2025, 6, 12, 9),
        run_after=utc(2025, 6, 12, 9),
        logical_date=utc(2025, 6, 1),
        order_from="2025-05-01",
        files_in="2025-05",
        setup=frankfurt_order,
    ),
}
DAG_BLOCKS = [(where, source) for where, source in BLOCKS if dag_id_of(source)]


def test_every_dag_block_is_run() -> None:
    assert sorted(dag_id_of(source) or "" for _, source in DAG_BLOCKS) == sorted(RUNS)


@pytest.fixture
def dag_folder(airflow_db: None) -> Iterator[Path]:
    """A folder inside the scratch DAG bundle (``dag.test()`` re-reads DAGs from their bundle), removed after."""
    from tests.conftest import SCRATCH_DAGS

    folder = Path(tempfile.mkdtemp(prefix="docs_", dir=SCRATCH_DAGS))
    yield folder
    shutil.rmtree(folder)


def load_dag_file(source: str, folder: Path) -> Any:
    """Write the block as a DAG file beside an ``aoi/fields.wkt`` and import it as the DAG processor would."""
    (folder / "aoi").mkdir(parents=True, exist_ok=True)
    (folder / "aoi" / "fields.wkt").write_text(FIELDS_WKT)
    path = folder / "doc_dag.py"
    path.write_text(source)
    if airflow_version().startswith("3.0."):
        # 3.0's dag.test() does not write the DAG, so its Assets stay inactive: write it as the processor would.
        from airflow.dag_processing.bundles.manager import DagBundlesManager
        from airflow.models.dagbag import DagBag

        DagBundlesManager().sync_bundles_to_db()
        DagBag(dag_folder=str(path), include_examples=False).sync_to_db("scratch_dags", None)
    spec = importlib.util.spec_from_file_location(f"doc_dag_{folder.name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def fast_waits(dag: Any) -> None:
    """The docs' sensors poll every few minutes, as they should in production; here, every half second."""
    for task in dag.tasks:
        if hasattr(task, "poke_interval"):
            task.poke_interval = 0.5
            task.max_wait = dt.timedelta(seconds=1)


@pytest.mark.integration
@pytest.mark.dag
@pytest.mark.parametrize(("where", "source"), DAG_BLOCKS, ids=[where for where, _ in DAG_BLOCKS])
def test_dag_block_runs_against_the_emulator(
    where: str, source: str, dag_folder: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    spec = RUNS[dag_id_of(source) or ""]
    control = emulator.control
    control.set_time(spec.now)
    spec.setup(emulator, monkeypatch)
    dag = load_dag_file(source, dag_folder)
    fast_waits(dag)
    control.set_speed(3600)
    destination = tmp_path / "imagery"
    when: dict[str, Any] = (
        {"logical_date": None, "run_after": spec.run_after} if NO_LOGICAL_DATE else {"logical_date": spec.logical_date}
    )

    run = dag.test(run_conf={"destination": str(destination)}, **when)

    assert run.state == "success", (where, task_states(run))
    [order] = [o for o in control.orders() if o["From"] == spec.order_from]
    assert order["To"] is None
    assert control.order_count() == spec.orders
    files = sorted((destination / spec.files_in).glob("*.tif"))
    assert files, f"{where}: nothing downloaded to {spec.files_in}: {list(destination.rglob('*'))}"


@pytest.mark.integration
@pytest.mark.dag
def test_readme_pipeline_next_month_reuses_the_order(dag_folder: Path, emulator: Any, tmp_path: Path) -> None:
    [source] = [source for _, source in DAG_BLOCKS if dag_id_of(source) == "clearsky_last_month"]
    control = emulator.control
    control.set_time(utc(2025, 6, 1, 0, 30))
    dag = load_dag_file(source, dag_folder)
    fast_waits(dag)
    control.set_speed(3600)
    conf = {"destination": str(tmp_path / "imagery")}

    june = dag.test(logical_date=utc(2025, 6, 1), run_conf=conf)
    control.set_time(utc(2025, 7, 1, 0, 30))
    july = dag.test(logical_date=utc(2025, 7, 1), run_conf=conf)

    assert june.state == july.state == "success", (task_states(june), task_states(july))
    assert task_states(july)["create_order"] == ["success"]
    assert control.order_count() == 1 and control.request_count("/api/tasking/orders", method="POST") == 1
    assert [c["kind"] for c in control.charges() if c["kind"] != "download"] == ["order", "renewal"]
    assert (tmp_path / "imagery" / "2025-05").is_dir() and (tmp_path / "imagery" / "2025-06").is_dir()
    assert json.dumps(control.orders()[0]["From"]) == '"2025-05-01"'
