"""``if_exists="reuse"`` on the create operator against the emulator over HTTP on 127.0.0.1: one order, one charge.

The match rules: ``tests/unit/utils/test_order_reuse.py``."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import pytest

from airflow_provider_clearsky._compat import AirflowFailException
from airflow_provider_clearsky.operators import orders as orders_module
from tests.support.orders_support import DictStore, FakeTI, context
from tests.support.orders_support import reusing_create_operator as create

ORDERS = "/api/tasking/orders"
ESTIMATE = "/api/tasking/orders/estimate"


@pytest.fixture
def emu(clearsky_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    conn = clearsky_emulator.connection_dict()
    conn["extra"] = {"timeout": 2.0, "max_retries": 2, "backoff_initial": 0.05, "backoff_max": 0.2}
    monkeypatch.setenv("AIRFLOW_CONN_CLEARSKY_DEFAULT", json.dumps(conn))
    clearsky_emulator.control.set_time(dt.datetime(2025, 6, 10, 9, tzinfo=dt.UTC))
    # The worker's clock is the API's (as in production): the create checks the billing month on both.
    monkeypatch.setattr(orders_module, "utc_now", clearsky_emulator.control.now)
    return clearsky_emulator


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
