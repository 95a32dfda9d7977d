"""``if_exists="reuse"`` on the create operator: the match rules, and what the operator checks before any request.

The operator against the emulator: ``tests/integration/operators/test_order_reuse.py``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from airflow_provider_clearsky._compat import AirflowFailException
from airflow_provider_clearsky.models import OrderRequest, TaskOrder
from airflow_provider_clearsky.utils.order_reuse import covers, differences, plan_reuse
from tests.support.orders_support import AOI2_WKT, AOI_WKT, CONSTELLATIONS, DictStore, FakeTI, context
from tests.support.orders_support import reusing_create_operator as create


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
