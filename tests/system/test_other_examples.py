"""The backfill, tile-mode and housekeeping examples, end to end through ``dag.test()`` against the emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import rendered_map_indexes, task_states, utc, xcoms

pytestmark = [pytest.mark.integration, pytest.mark.dag]

STRATUS2 = ["Sentinel1", "Sentinel2", "Landsat89"]
SMALL_FIELD = "GEOMETRYCOLLECTION (POLYGON ((9.50 55.70, 9.53 55.70, 9.53 55.72, 9.50 55.72, 9.50 55.70)))"


# ----------------------------------------------------------------------------- historical backfill

BACKFILL = "example_clearsky_historical_backfill"


def test_backfill_orders_the_period_weekly_and_downloads_every_image(
    example: Any, emulator: Any, tmp_path: Path
) -> None:
    control = emulator.control
    control.set_time(utc(2025, 4, 2, 9))
    control.set_speed(3600)
    dag = example(BACKFILL)
    conf = {"date_from": "2025-01-01", "date_to": "2025-03-31", "destination": str(tmp_path)}

    run = dag.test(logical_date=utc(2025, 4, 2), run_conf=conf)

    assert run.state == "success", task_states(run)
    [order] = control.orders()
    assert (order["From"], order["To"], order["ImageFrequency"], order["StorageMonths"]) == (
        "2025-01-01",
        "2025-03-31",
        7,
        3,
    )
    dates = xcoms(BACKFILL, run.run_id, "wait_for_images")[0]
    # Weekly from the vendor client's default ReferenceDate 2024-01-01 (a Monday): every Monday of the period.
    assert len(dates) == 13 and dates[0] == "2025-01-06" and dates[-1] == "2025-03-31"
    assert rendered_map_indexes(run, "download") == dates
    [summary] = xcoms(BACKFILL, run.run_id, "report")
    assert summary["order_guid"] == order["TaskOrderGuid"] and len(summary["files"]) == len(dates)
    for row in summary["files"]:
        path = Path(row["uri"].removeprefix("file://"))
        assert path.parent == tmp_path / "2025-01-01" and path.stat().st_size == row["bytes"] > 0
    assert control.download_count() == len(dates)

    # Triggered again for the same period: the order is reused, nothing is ordered or downloaded twice.
    again = dag.test(logical_date=utc(2025, 4, 3), run_conf=conf)
    states = task_states(again)
    assert again.state == "success", states
    assert states["reuse_order"] == ["success"] and states["create_order"] == ["skipped"]
    assert control.order_count() == 1
    assert control.download_count() == len(dates)  # complete files are kept, not paid again


# ----------------------------------------------------------------------------- tile mode

TILES = "example_clearsky_tile_mode"


def test_tile_mode_orders_the_optimized_cells_deduplicated_and_downloads_by_tile(
    example: Any, emulator: Any, tmp_path: Path
) -> None:
    control = emulator.control
    control.set_time(utc(2025, 6, 2, 9))
    control.set_speed(3600)
    dag = example(TILES)
    conf = {"month": "2025-05", "destination": str(tmp_path)}

    run = dag.test(logical_date=utc(2025, 6, 2), run_conf=conf)

    assert run.state == "success", task_states(run)
    [cover] = xcoms(TILES, run.run_id, "optimize_tiles")
    cells = cover["tile_guids"] + cover["minitile_guids"]
    assert cover["tile_guids"] == [] and len(cover["minitile_guids"]) == 4  # a small area: minitiles
    [order] = control.orders()
    assert sorted(order["MiniTiles"]) == sorted(cover["minitile_guids"]) and not order.get("Wkt")
    assert (order["From"], order["To"]) == ("2025-05-01", "2025-05-31")
    create_body = [e for e in control.request_log() if e["path"] == "/api/tasking/orders" and e["method"] == "POST"]
    assert len(create_body) == 1
    dates = xcoms(TILES, run.run_id, "wait_for_images")[0]
    assert dates == ["2025-05-05", "2025-05-12", "2025-05-19", "2025-05-26"]  # weekly from 2024-01-01 (Mondays)
    assert rendered_map_indexes(run, "download_tiles") == dates
    files = sorted((tmp_path / "2025-05").glob("*.tif"))
    assert len(files) == len(dates) * len(cells)
    assert {f.name.split("_")[1] for f in files} == set(cells)
    first_charge = [c for c in control.charges("order")]
    assert len(first_charge) == 1 and first_charge[0]["eur"] > 0

    # Ordering the same cells again (TileDeduplication): a new order, but nothing charged for known cells.
    again = dag.test(logical_date=utc(2025, 6, 3), run_conf=conf)
    assert again.state == "success", task_states(again)
    charges = control.charges("order")
    assert len(charges) == 2 and charges[1]["eur"] == 0
    assert control.download_count() == len(files)  # the files were complete: not downloaded again


# ----------------------------------------------------------------------------- housekeeping

HOUSEKEEPING = "example_clearsky_order_housekeeping"


def place_recurring_order(emulator: Any, date_from: str, wkt: str = SMALL_FIELD) -> str:
    body = {
        "Wkt": wkt,
        "Model": "Stratus2",
        "SatelliteConstellations": STRATUS2,
        "StorageMonths": 1,
        "ApiRequests": 1,
        "ImageFrequency": 7,
        "ReferenceDate": date_from,
        "From": date_from,
        "To": None,
    }
    with emulator.client() as client:
        answer = client.post("/api/tasking/orders", json=body)
        answer.raise_for_status()
        return str(answer.json()["Data"]["TaskOrderGuid"])


def test_housekeeping_cancels_what_the_policy_retires_and_reports(
    example: Any, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    control = emulator.control
    control.set_time(utc(2024, 1, 10))
    old = place_recurring_order(emulator, "2024-01-01")
    control.set_time(utc(2025, 5, 3))
    listed = place_recurring_order(emulator, "2025-05-01")
    kept = place_recurring_order(emulator, "2025-05-01", SMALL_FIELD.replace("9.50", "9.49"))
    control.set_time(utc(2025, 5, 25, 6, 1))
    monkeypatch.setenv("AIRFLOW_VAR_CLEARSKY_ORDERS_TO_RETIRE", json.dumps([listed.upper()]))
    dag = example(HOUSEKEEPING)

    run = dag.test(logical_date=utc(2025, 5, 25, 6))

    assert run.state == "success", task_states(run)
    assert sorted(rendered_map_indexes(run, "cancel_order")) == sorted([old, listed])
    [summary] = xcoms(HOUSEKEEPING, run.run_id, "report")
    assert sorted(r["order_guid"] for r in summary["cancelled"]) == sorted([old, listed])
    assert {r["outcome"] for r in summary["cancelled"]} == {"renewal_stopped"}
    assert [k["order_guid"] for k in summary["kept"]] == [kept]
    by_guid = {o["TaskOrderGuid"]: o for o in control.orders()}
    # A cancel does not rewrite the order (To stays null); the emulator flags the stop with its invented field.
    assert by_guid[old]["RenewalStopped"] is True and by_guid[listed]["RenewalStopped"] is True
    assert by_guid[kept]["To"] is None and by_guid[kept]["RenewalStopped"] is False
    # Past the cut-off the stopped orders do not renew; the kept one does.
    control.set_time(utc(2025, 6, 1, 0, 0, 1))
    renewals = [c["order"] for c in control.charges("renewal") if c["at"].startswith("2025-06-01")]
    assert renewals == [kept]


def test_housekeeping_with_nothing_to_cancel_still_reports(example: Any, emulator: Any) -> None:
    emulator.control.set_time(utc(2025, 5, 3))
    guid = place_recurring_order(emulator, "2025-05-01")
    dag = example(HOUSEKEEPING)

    run = dag.test(logical_date=utc(2025, 5, 25, 6), run_conf={"retire_order_guids": [guid], "dry_run": True})

    states = task_states(run)
    assert run.state == "success", states
    assert states["cancel_order"] == ["skipped"] and states["report"] == ["success"]
    [summary] = xcoms(HOUSEKEEPING, run.run_id, "report")
    assert summary["cancelled"] == [] and summary["dry_run"] is True
    assert emulator.control.request_count("/api/tasking/orders/cancel") == 0
