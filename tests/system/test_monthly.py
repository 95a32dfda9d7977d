"""The monthly monitoring example, end to end through ``dag.test()`` against the emulator: the first month
orders (once), the next month reuses the recurring order (``if_exists="reuse"``), each month's composites land
on disk, and a manual run without a logical date covers the month before ``run_after``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_clearsky._compat import airflow_version

from .conftest import rendered_map_indexes, task_states, utc, xcoms

pytestmark = [pytest.mark.integration, pytest.mark.dag]

DAG_ID = "example_clearsky_monthly_monitoring"
ASSET_URI = "clearsky://monitoring/funen-dairy-fields"
# Weekly from the vendor client's default ReferenceDate 2024-01-01: every Monday.
MAY = ["2025-05-05", "2025-05-12", "2025-05-19", "2025-05-26"]
JUNE = ["2025-06-02", "2025-06-09", "2025-06-16", "2025-06-23", "2025-06-30"]


def asset_events(run_id: str) -> list[dict[str, Any]]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        asset = session.scalars(select(AssetModel).where(AssetModel.uri == ASSET_URI)).one()
        events = session.scalars(select(AssetEvent).where(AssetEvent.asset_id == asset.id)).all()
        return [dict(event.extra) for event in events if event.source_run_id == run_id]


def test_orders_once_then_reuses_the_recurring_order_next_month(example: Any, emulator: Any, tmp_path: Path) -> None:
    control = emulator.control
    dag = example(DAG_ID)

    # The scheduled run of 1 June 2025 (data interval May): no order yet, so it orders.
    control.set_time(utc(2025, 6, 1, 0, 30))
    control.set_speed(3600)  # one emulated hour per real second while the DAG waits
    june_run = dag.test(logical_date=utc(2025, 6, 1), run_conf={"destination": str(tmp_path)})

    states = task_states(june_run)
    assert june_run.state == "success", states
    assert states["create_order"] == ["success"]
    assert control.order_count() == 1
    order = control.orders()[0]
    assert order["To"] is None and order["From"] == "2025-05-01" and order["ImageFrequency"] == 7
    guid = order["TaskOrderGuid"]
    assert xcoms(DAG_ID, june_run.run_id, "create_order") == [guid]
    assert xcoms(DAG_ID, june_run.run_id, "create_order", "order_summary")[0]["reused"] is False
    assert xcoms(DAG_ID, june_run.run_id, "wait_for_images") == [MAY]
    assert rendered_map_indexes(june_run, "download") == MAY  # the map index shows the date
    files = sorted((tmp_path / "2025-05").glob("*.tif"))
    assert [f.name.split("_")[2] for f in files] == MAY, [f.name for f in files]
    for file in files:
        sidecar = json.loads(Path(f"{file}.json").read_text())
        assert sidecar["size"] == file.stat().st_size > 0 and sidecar["order_guid"] == guid
    [event] = asset_events(june_run.run_id)  # one event for the whole month
    assert event["month"] == "2025-05" and event["order_guid"] == guid and event["count"] == len(MAY)
    assert control.download_count() == len(MAY)

    # The run of 1 July (data interval June): the recurring order renewed itself; nothing new is ordered.
    control.set_time(utc(2025, 7, 1, 0, 30))
    july_run = dag.test(logical_date=utc(2025, 7, 1), run_conf={"destination": str(tmp_path)})

    states = task_states(july_run)
    assert july_run.state == "success", states
    assert states["create_order"] == ["success"]
    assert control.order_count() == 1
    assert control.request_count("/api/tasking/orders", method="POST") == 1
    assert control.request_count("/api/tasking/orders/estimate", method="POST") == 1  # the reuse estimates nothing
    assert [c["kind"] for c in control.charges() if c["kind"] != "download"] == ["order", "renewal"]
    assert xcoms(DAG_ID, july_run.run_id, "create_order") == [guid]
    assert xcoms(DAG_ID, july_run.run_id, "create_order", "order_summary")[0]["reused"] is True
    assert xcoms(DAG_ID, july_run.run_id, "create_order", "_link_ClearSkyOrderLink") == [
        xcoms(DAG_ID, june_run.run_id, "create_order", "_link_ClearSkyOrderLink")[0]
    ]
    assert rendered_map_indexes(july_run, "download") == JUNE
    assert len(list((tmp_path / "2025-06").glob("*.tif"))) == len(JUNE)
    assert control.download_count() == len(MAY) + len(JUNE)


def test_over_budget_fails_before_ordering(example: Any, emulator: Any, tmp_path: Path) -> None:
    emulator.control.set_time(utc(2025, 6, 1, 0, 30))
    dag = example(DAG_ID)

    run = dag.test(logical_date=utc(2025, 6, 1), run_conf={"destination": str(tmp_path), "max_cost_eur": 0.5})

    states = task_states(run)
    assert run.state == "failed"
    assert states["create_order"] == ["failed"] and states["wait_for_order"] == ["upstream_failed"]
    assert emulator.control.order_count() == 0
    assert emulator.control.request_count("/api/tasking/orders", method="POST") == 0


@pytest.mark.skipif(not airflow_version().startswith("3.3"), reason="dag.test(logical_date=None) is Airflow 3.3's")
def test_a_manual_run_without_a_logical_date_covers_the_month_before_run_after(
    example: Any, emulator: Any, tmp_path: Path
) -> None:
    control = emulator.control
    control.set_time(utc(2025, 6, 12, 9))
    control.set_speed(3600)
    dag = example(DAG_ID)

    run = dag.test(logical_date=None, run_after=utc(2025, 6, 12, 9), run_conf={"destination": str(tmp_path)})

    states = task_states(run)
    assert run.state == "success", states
    assert run.logical_date is None
    [order] = control.orders()
    assert order["From"] == "2025-05-01" and order["To"] is None
    assert rendered_map_indexes(run, "download") == MAY
    assert len(list((tmp_path / "2025-05").glob("*.tif"))) == len(MAY)
