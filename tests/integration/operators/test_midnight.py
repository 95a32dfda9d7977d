"""Money around 00:00 UTC on the 1st (issue 17 D3, D4): the emulator's clock stands just before the cut-off
and the request that matters is delayed past it by retried 429s (each moves the frozen clock on, as the time
a client spends waiting them out). What the operators report must be what the emulator did and charged."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from airflow_provider_clearsky._compat import AirflowFailException
from airflow_provider_clearsky.emulator.handle import EmulatorHandle
from airflow_provider_clearsky.operators import orders
from airflow_provider_clearsky.operators.orders import (
    ClearSkyCancelOrderOperator,
    ClearSkyCreateOrderOperator,
    ClearSkyEstimateOrderOperator,
)
from tests.support.orders_support import AOI_WKT, CONSTELLATIONS, DictStore, FakeTI, context

pytestmark = pytest.mark.integration

UTC = dt.UTC
JUNE_10 = dt.datetime(2026, 6, 10, 12, tzinfo=UTC)
BEFORE_MIDNIGHT = dt.datetime(2026, 6, 30, 23, 59, 58, tzinfo=UTC)
ORDERS = "/api/tasking/orders"
SETTINGS: dict[str, Any] = {
    "wkt": AOI_WKT,
    "model": "Stratus2",
    "satellite_constellations": CONSTELLATIONS,
    "image_frequency": 7,
    "date_from": "2026-06-01",
    "date_to": None,  # recurring: created in July it is charged for June and July
}


@pytest.fixture
def emu(clearsky_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> EmulatorHandle:
    """Frozen clock; the operators' now is the emulator's; 429s are retried at once by the hook."""
    conn = {**clearsky_emulator.connection_dict(), "extra": {"max_retries": 5, "backoff_initial": 0, "backoff_max": 0}}
    monkeypatch.setenv("AIRFLOW_CONN_CLEARSKY_DEFAULT", json.dumps(conn))
    monkeypatch.setattr(orders, "utc_now", clearsky_emulator.control.now)
    clearsky_emulator.control.set_speed(0)
    return clearsky_emulator


def june_cost(emu: EmulatorHandle) -> float:
    summary = ClearSkyEstimateOrderOperator(task_id="estimate", **SETTINGS).execute(context())
    return float(summary["current_month_cost"])


def delay_past_midnight(emu: EmulatorHandle, method: str, path: str) -> None:
    """Three 429s on ``method path``, each taking 3 emulated seconds: the request lands at 00:00:07."""
    emu.control.add_fault("429", path=path, method=method, times=3, retry_after=0.01, advance=3)


def test_a_create_delayed_past_midnight_is_checked_against_the_budget_and_fails_loudly(emu: EmulatorHandle) -> None:
    emu.control.set_time(BEFORE_MIDNIGHT)
    budget = june_cost(emu) * 1.5  # enough for June, not for June and July
    delay_past_midnight(emu, "POST", ORDERS)
    store = DictStore()
    op = ClearSkyCreateOrderOperator(task_id="create", max_cost=budget, **SETTINGS)

    with pytest.raises(AirflowFailException, match=r"order (\S+) was created at 2026-07-01.*above max_cost") as caught:
        op.execute(context(FakeTI(), store))

    [order] = emu.control.orders()
    assert order["ChargedEur"] > budget  # what the emulator charged: June and July
    assert order["TaskOrderGuid"] in str(caught.value)
    if store.values:  # Airflow 3.3+ keeps the GUID in the task state store: a later try adopts it
        assert store.get("clearsky_order_guid") == order["TaskOrderGuid"]


def test_a_create_whose_month_changed_after_the_estimate_estimates_again_and_refuses(emu: EmulatorHandle) -> None:
    emu.control.set_time(BEFORE_MIDNIGHT)
    budget = june_cost(emu) * 1.5
    delay_past_midnight(emu, "GET", ORDERS)  # the listing between estimate and create
    op = ClearSkyCreateOrderOperator(task_id="create", max_cost=budget, **SETTINGS)

    with pytest.raises(AirflowFailException, match=r"order refused, nothing was ordered.*exceeds max_cost"):
        op.execute(context(FakeTI(), DictStore()))
    assert emu.control.orders() == []
    assert [c for c in emu.control.charges() if c["kind"] == "order"] == []


def test_a_create_before_midnight_within_budget_succeeds(emu: EmulatorHandle) -> None:
    emu.control.set_time(BEFORE_MIDNIGHT)
    budget = june_cost(emu) * 1.5
    guid = ClearSkyCreateOrderOperator(task_id="create", max_cost=budget, **SETTINGS).execute(context())
    assert emu.control.order(guid)["ChargedEur"] <= budget


def cancel(guid: str) -> dict[str, Any]:
    result: dict[str, Any] = ClearSkyCancelOrderOperator(task_id="cancel", order_guid=guid).execute(context())
    return result


def renewals(emu: EmulatorHandle, guid: str) -> list[str]:
    return [c["at"][:7] for c in emu.control.charges() if c["kind"] == "renewal" and c["order"] == guid]


def test_a_cancel_delayed_past_midnight_reports_the_renewal_that_happened(emu: EmulatorHandle) -> None:
    emu.control.set_time(JUNE_10)
    guid = ClearSkyCreateOrderOperator(task_id="create", max_cost=None, **SETTINGS).execute(context())
    emu.control.set_time(BEFORE_MIDNIGHT)
    delay_past_midnight(emu, "DELETE", f"{ORDERS}/cancel")

    result = cancel(guid)

    order = emu.control.order(guid)
    assert renewals(emu, guid) == ["2026-07"]  # the emulator charged July's renewal before the cancel landed
    assert result["coverage_until"] == order["CoverageEnds"] == "2026-07-31"
    assert result["renewal_already_happened_for"] == "2026-07"
    assert "after that month's renewal had been charged" in result["message"] and "2026-08" in result["message"]


def test_a_cancel_of_an_order_starting_next_month_reports_no_renewal(emu: EmulatorHandle) -> None:
    emu.control.set_time(JUNE_10)
    settings = {**SETTINGS, "date_from": "2026-08-01"}
    guid = ClearSkyCreateOrderOperator(task_id="create", max_cost=None, **settings).execute(context())
    emu.control.set_time(dt.datetime(2026, 7, 15, tzinfo=UTC))

    result = cancel(guid)

    order = emu.control.order(guid)
    assert renewals(emu, guid) == []  # nothing was charged as a renewal
    assert result["renewal_already_happened_for"] is None
    assert result["coverage_until"] == order["CoverageEnds"] == "2026-08-31"
    assert "renewal had been charged" not in result["message"]
