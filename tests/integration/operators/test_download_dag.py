"""Download operators in real DAG runs (``dag.test()``) against the emulator: mapped over the dates the
availability sensor finds, Asset outlets, and the upload URL kept out of rendered fields, XCom and logs."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import rasterio

from airflow_provider_clearsky.emulator.handle import EmulatorHandle
from tests.support.airflow30 import lines_holding, register_dag_file

from . import test_download as base
from .test_download import DATES, FIELD, SECRET_MARK, place_order

# The emulator and upload-receiver fixtures of the direct-execute tests.
emu = base.emu
receiver = base.receiver

pytestmark = pytest.mark.integration

ASSET_URI = "clearsky://imagery/frankfurt-field"


def _rows(model: Any, **filters: Any) -> list[Any]:
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = select(model)
        for name, value in filters.items():
            query = query.where(getattr(model, name) == value)
        rows = list(session.scalars(query))
        session.expunge_all()
        return rows


def test_mapped_download_of_three_dates_found_by_the_sensor_emits_asset_events(
    write_dag: Any, emu: EmulatorHandle, tmp_path: Path
) -> None:
    place_order(emu)
    destination = tmp_path / "imagery"
    dag = write_dag(
        "clearsky_download_mapped",
        f"""
        import datetime as dt
        from airflow.sdk import DAG, Asset
        from airflow_provider_clearsky.operators.download import ClearSkyDownloadCompositeOperator
        from airflow_provider_clearsky.sensors.availability import ClearSkyImageAvailabilitySensor

        FIELD = {FIELD!r}
        with DAG("clearsky_download_mapped", schedule=None, start_date=dt.datetime(2025, 1, 1)) as dag:
            dates = ClearSkyImageAvailabilitySensor(
                task_id="dates",
                wkt=FIELD,
                date_from="2025-05-01",
                date_to="2025-05-21",
                bands="rgb",
                deferrable=False,
                poke_interval=1,
                timeout=60,
            )
            ClearSkyDownloadCompositeOperator.partial(
                task_id="download",
                wkt=FIELD,
                bands="rgb",
                destination={str(destination)!r} + "/{{{{ dag.dag_id }}}}",
                max_active_tis_per_dag=2,
                outlets=[Asset({ASSET_URI!r})],
            ).expand(date=dates.output)
        """,
    )
    register_dag_file(dag.fileloc, "scratch_dags")  # Airflow 3.0: so the outlet Asset is active

    run = dag.test()

    assert run.state == "success"
    from airflow.models.xcom import XComModel

    found = _rows(XComModel, dag_id="clearsky_download_mapped", task_id="dates", key="return_value")
    assert [XComModel.deserialize_value(x) for x in found] == [DATES]
    results = _rows(XComModel, dag_id="clearsky_download_mapped", task_id="download", key="return_value")
    uris = sorted(XComModel.deserialize_value(x) for x in results)
    assert len(uris) == 3 and all(uri.startswith(f"file://{destination}/clearsky_download_mapped/") for uri in uris)
    for uri, date in zip(uris, DATES, strict=True):
        path = Path(uri.removeprefix("file://"))
        assert f"_{date}_" in path.name
        with rasterio.open(path) as raster:
            assert raster.count == 3
        assert json.loads(Path(f"{path}.json").read_text())["request"]["Date"] == date
    assert emu.control.download_count() == 3

    from airflow.models.asset import AssetEvent, AssetModel

    asset = _rows(AssetModel, uri=ASSET_URI)
    assert len(asset) == 1
    events = [e for e in _rows(AssetEvent, asset_id=asset[0].id) if e.source_run_id == run.run_id]
    assert len(events) == 3  # one per mapped download
    files = sorted(f["uri"] for e in events for f in e.extra["clearsky_files"])
    assert files == uris


def test_rendered_upload_url_is_masked_everywhere(
    write_dag: Any,
    emu: EmulatorHandle,
    receiver: tuple[str, list[tuple[str, bytes]]],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # our own code must not log the URL at any level
    place_order(emu)
    url, received = receiver
    monkeypatch.setenv("AIRFLOW_VAR_CLEARSKY_SIGNED_TARGET", url)  # a name the masker does not know as secret
    dag = write_dag(
        "clearsky_download_upload",
        f"""
        import datetime as dt
        from airflow.sdk import DAG
        from airflow_provider_clearsky.operators.download import ClearSkyDownloadCompositeOperator

        with DAG("clearsky_download_upload", schedule=None, start_date=dt.datetime(2025, 1, 1)) as dag:
            ClearSkyDownloadCompositeOperator(
                task_id="upload",
                wkt={FIELD!r},
                date="2025-05-07",
                bands="rgb",
                upload_url="{{{{ var.value.clearsky_signed_target }}}}",
            )
        """,
    )

    run = dag.test()

    assert run.state == "success"
    assert len(received) == 1 and SECRET_MARK in received[0][0]  # the API really got the URL
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel

    rendered = _rows(RenderedTaskInstanceFields, dag_id="clearsky_download_upload", run_id=run.run_id)
    assert len(rendered) == 1
    assert rendered[0].rendered_fields["upload_url"] == "***"
    assert rendered[0].rendered_fields["date"] == "2025-05-07"
    assert "TOP-SECRET" not in json.dumps(rendered[0].rendered_fields)
    xcoms = _rows(XComModel, dag_id="clearsky_download_upload", run_id=run.run_id)
    # The "ClearSKY order" extra link's own XCom is empty here (no order_guid): not a value of the task.
    values = [XComModel.deserialize_value(x) for x in xcoms if not x.key.startswith("_link_")]
    assert values == ["composite 2025-05-07 uploaded to 127.0.0.1 via upload_url (URL redacted)"]
    # Every stdlib logger at DEBUG (ours, httpx, httpcore, Airflow's): the URL is in no record.
    assert caplog.records and "TOP-SECRET" not in caplog.text
    out, err = capfd.readouterr()
    assert "uploaded to 127.0.0.1" in out + err
    # On Airflow 3.0 only its own in-process DEBUG exchange lines hold the URL (see tests/support/airflow30.py):
    # nothing at INFO or above does, and 3.3 prints none of these lines at all.
    assert lines_holding(out + err, "TOP-SECRET") == []
