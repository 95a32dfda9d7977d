"""``if_exists="reuse"`` on the create operator: the match rules (unit) and the operator against the emulator."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import pytest

from airflow_provider_clearsky._compat import AirflowFailException
from airflow_provider_clearsky.models import OrderRequest, TaskOrder
from airflow_provider_clearsky.operators import orders as orders_module
from airflow_provider_clearsky.operators.orders import ClearSkyCreateOrderOperator
from airflow_provider_clearsky.utils.order_reuse import covers, differences, plan_reuse
from tests.support.orders_support import AOI2_WKT, AOI_WKT, CONSTELLATIONS, DictStore, FakeTI, context

ORDERS = "/api/tasking/orders"
ESTIMATE = "/api/tasking/orders/estimate"


def request(date_from: str = "2025-06-01", date_to: str | None = None, **overrides: Any) -> OrderRequest:
    values: dict[str, Any] = {
        "wkt": AOI_WKT,
        "model": "Stratus2",
        "satellite_constellations": CONSTELLATIONS,
        "image_frequency": 7,
        "date_from": date_from,
        "date_to": date_to,
    }
    values.update(overrides)
    return OrderRequest(**values)


def order(guid: str, date_from: str, date_to: str | None = None, created: str = "2025-05-01T10:00:00Z", **over: Any):
    values: dict[str, Any] = {
        "TaskOrderGuid": guid,
        "OrderingProcessStatus": "UpToDate",
        "Model": "Stratus2",
        # The API echoes the area in its own spelling: a collection, rounded, another starting vertex.
        "Wkt": "GEOMETRYCOLLECTION (POLYGON ((12.56 55.6, 12.56 55.64, 12.5 55.64, 12.5 55.6, 12.56 55.6)))",
        "SatelliteConstellations": ["Landsat89", "Sentinel2", "Sentinel1"],
        "ImageFrequency": 7,
        "ReferenceDate": date_from,
        "From": date_from,
        "To": date_to,
        "CreatedDate": created,
    }
    values.update(over)
    return TaskOrder.model_validate(values)


# ----------------------------------------------------------------------------- the match rules


def test_a_renewing_order_that_started_earlier_covers_a_later_month() -> None:
    found = order("a", "2025-05-01")
    assert differences(found, request()) == [] and covers(found, request())
    assert covers(found, request("2025-06-01", "2025-06-30"))  # a historical request too


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"Model": "Nimbus"}, "model"),
        ({"SatelliteConstellations": ["Sentinel2"]}, "constellations"),
        ({"ImageFrequency": 5}, "image frequency"),
        ({"OrderingProcessStatus": "Canceled"}, "status Canceled"),
        ({"Wkt": AOI2_WKT}, "area"),
    ],
)
def test_another_order_is_not_reused(change: dict[str, Any], reason: str) -> None:
    other = order("a", "2025-05-01", **change)
    assert reason in " ".join(differences(other, request()))
    assert plan_reuse([other], request()).order is None


def test_period_rules() -> None:
    assert not covers(order("a", "2025-07-01"), request())  # starts later
    assert not covers(order("a", "2025-05-01", RenewalStopped=True), request())  # no longer renews
    historical = order("h", "2025-05-01", "2025-06-30")
    assert covers(historical, request("2025-06-01", "2025-06-30"))
    assert not covers(historical, request("2025-06-01", "2025-07-31"))  # only part of the period
    assert not covers(historical, request())  # a recurring request needs a renewing order


def test_the_reference_date_counts_only_when_the_dag_sets_it() -> None:
    found = order("a", "2025-05-01")  # its schedule counts from 1 May
    assert plan_reuse([found], request()).order is found
    assert plan_reuse([found], request(reference_date="2025-06-03"), same_reference_date=True).order is None


def test_the_oldest_of_several_is_reused_and_the_others_listed() -> None:
    newer = order("newer", "2025-04-01", created="2025-04-20T00:00:00Z")
    oldest = order("oldest", "2025-05-01", created="2025-03-01T00:00:00Z")
    plan = plan_reuse([newer, oldest], request())
    assert plan.order is oldest and plan.also_matching == [newer]
    assert "renews every month since 2025-05-01" in plan.reason


def test_a_recurring_request_before_a_renewing_order_asks_only_for_the_months_before_it() -> None:
    renewing = order("r", "2025-07-01")
    plan = plan_reuse([renewing], request("2025-05-01"))
    assert plan.order is None and plan.renewing_from is renewing
    assert (plan.request.date_from, plan.request.date_to) == (dt.date(2025, 5, 1), dt.date(2025, 6, 30))
    # The historical order placed for that gap is itself reused by the next try or run.
    gap = order("g", "2025-05-01", "2025-06-30")
    assert plan_reuse([renewing, gap], request("2025-05-01")).order is gap


# ----------------------------------------------------------------------------- the operator against the emulator


@pytest.fixture
def emu(clearsky_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    conn = clearsky_emulator.connection_dict()
    conn["extra"] = {"timeout": 2.0, "max_retries": 2, "backoff_initial": 0.05, "backoff_max": 0.2}
    monkeypatch.setenv("AIRFLOW_CONN_CLEARSKY_DEFAULT", json.dumps(conn))
    clearsky_emulator.control.set_time(dt.datetime(2025, 6, 10, 9, tzinfo=dt.timezone.utc))
    # The worker's clock is the API's (as in production): the create checks the billing month on both.
    monkeypatch.setattr(orders_module, "utc_now", clearsky_emulator.control.now)
    return clearsky_emulator


def create(task_id: str, date_from: str, date_to: str | None = None, **overrides: Any) -> ClearSkyCreateOrderOperator:
    values: dict[str, Any] = {
        "wkt": AOI_WKT,
        "model": "Stratus2",
        "satellite_constellations": CONSTELLATIONS,
        "image_frequency": 7,
        "date_from": date_from,
        "date_to": date_to,
        "max_cost": 100.0,
        "if_exists": "reuse",
    }
    values.update(overrides)
    return ClearSkyCreateOrderOperator(task_id=task_id, **values)


@pytest.mark.integration
def test_reuse_last_month_then_this_month_one_order_one_charge(emu: Any) -> None:
    control = emu.control
    first = create("create", "2025-05-01").execute(context(FakeTI(), DictStore()))
    ti = FakeTI()
    second = create("create", "2025-06-01").execute(context(ti, DictStore()))

    assert second == first
    assert control.order_count() == 1
    assert control.request_count(ORDERS, method="POST") == 1
    assert control.request_count(ESTIMATE, method="POST") == 1  # the reuse spends and estimates nothing
    assert [c["kind"] for c in control.charges()] == ["order"]
    assert ti.xcoms["_link_ClearSkyOrderLink"].endswith(f"/orders/{first}")  # the link opens the reused order
    assert ti.xcoms["order_summary"]["reused"] is True and ti.xcoms["order_summary"]["estimate"] is None
    assert ti.xcoms["status_at_creation"] == ti.xcoms["order_status"] == control.order(first)["OrderingProcessStatus"]


@pytest.mark.integration
def test_reuse_logs_the_order_and_the_others_that_match(
    emu: Any, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    control = emu.control
    older = create("a", "2025-05-01", if_exists="create").execute(context(FakeTI(), DictStore()))
    newer = create("b", "2025-06-01", if_exists="create").execute(context(FakeTI(), DictStore()))
    assert control.order_count() == 2

    with caplog.at_level(logging.INFO):
        reused = create("c", "2025-06-01").execute(context(FakeTI(), DictStore()))

    out, err = capfd.readouterr()
    logged = out + err + caplog.text
    assert reused == older and control.order_count() == 2
    assert f"Reusing ClearSKY order {older}" in logged and "renews every month since 2025-05-01" in logged
    assert f"Also covering, not reused (the oldest is): {newer}" in logged


@pytest.mark.integration
def test_a_run_for_an_older_month_orders_just_that_month_once(emu: Any) -> None:
    control = emu.control
    renewing = create("june", "2025-06-01").execute(context(FakeTI(), DictStore()))

    older = create("may", "2025-05-01").execute(context(FakeTI(), DictStore()))
    again = create("may", "2025-05-01").execute(context(FakeTI(), DictStore()))  # the run cleared and run again

    assert older != renewing and again == older
    gap = control.order(older)
    assert (gap["From"], gap["To"]) == ("2025-05-01", "2025-05-31")
    assert control.order_count() == 2 and control.request_count(ORDERS, method="POST") == 2


@pytest.mark.integration
def test_no_match_creates_within_budget_as_before(emu: Any) -> None:
    with pytest.raises(AirflowFailException, match="exceeds max_cost"):
        create("create", "2025-06-01", max_cost=0.01).execute(context(FakeTI(), DictStore()))
    assert emu.control.order_count() == 0 and emu.control.request_count(ORDERS, method="POST") == 0


def test_if_exists_is_checked_before_any_request() -> None:
    op = create("create", "2025-06-01", if_exists="replace")
    with pytest.raises(AirflowFailException, match=r"if_exists must be 'create'.*or 'reuse'"):
        op.execute(context(FakeTI(), DictStore()))


def test_the_tile_download_takes_minitile_guid_and_the_old_name_for_one_release() -> None:
    from airflow_provider_clearsky.operators.download import ClearSkyDownloadTileOperator

    guid = "0194d140-faa6-7b7a-a382-2d40abff0f9a"
    new = ClearSkyDownloadTileOperator(task_id="tiles", minitile_guid=[guid], date="2025-06-01", destination="/x")
    assert new.minitile_guid == [guid] and "minitile_guid" in new.template_fields
    with pytest.warns(DeprecationWarning, match="mini_tile_guid= is deprecated .* use minitile_guid= instead"):
        old = ClearSkyDownloadTileOperator(task_id="tiles", mini_tile_guid=[guid], date="2025-06-01", destination="/x")
    assert old.minitile_guid == [guid]
