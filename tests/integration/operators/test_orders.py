"""The ordering operators against the ClearSKY emulator over HTTP on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from airflow_provider_clearsky._compat import AirflowFailException, ResumableJobMixin
from airflow_provider_clearsky.exceptions import OrderOutcomeUnknownError
from airflow_provider_clearsky.operators import orders
from airflow_provider_clearsky.operators.orders import (
    ClearSkyCancelOrderOperator,
    ClearSkyCreateOrderOperator,
    ClearSkyEstimateOrderOperator,
    ClearSkyOptimizeTilesOperator,
    ClearSkySearchTilesOperator,
)
from tests.support.orders_support import (
    AOI_GEOJSON,
    AOI_WKT,
    CONSTELLATIONS,
    BodySpy,
    DictStore,
    DyingStore,
    FakeTI,
    context,
    install_spy,
    month_start,
)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> BodySpy:
    return install_spy(monkeypatch)


pytestmark = pytest.mark.integration

# Airflow 3.3+ has the task state store the create operator resumes from; below, common-compat's stand-in
# mixin resubmits every try and the operator falls back to the lookup by creation time (tested below too).
needs_state_store = pytest.mark.skipif(
    not ResumableJobMixin.__module__.startswith("airflow.sdk"), reason="task_state_store arrived in Airflow 3.3"
)

ORDERS = "POST /api/tasking/orders"
ESTIMATE = "POST /api/tasking/orders/estimate"


@pytest.fixture
def emu(clearsky_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The emulator, with ``clearsky_default`` pointing at it (short timeout, fast retries)."""
    conn = clearsky_emulator.connection_dict()
    conn["extra"] = {"timeout": 1.0, "max_retries": 2, "backoff_initial": 0.05, "backoff_max": 0.2}
    monkeypatch.setenv("AIRFLOW_CONN_CLEARSKY_DEFAULT", json.dumps(conn))
    return clearsky_emulator


def settings_for(emu: Any, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "wkt": AOI_WKT,
        "model": "Stratus2",
        "satellite_constellations": CONSTELLATIONS,
        "image_frequency": 7,
        "date_from": month_start(emu.control.now()),
        "date_to": None,
    }
    values.update(overrides)
    return values


def create_op(emu: Any, task_id: str = "create", **overrides: Any) -> ClearSkyCreateOrderOperator:
    kwargs: dict[str, Any] = {"max_cost": 100.0, "outcome_timeout": 10.0, **settings_for(emu)}
    kwargs.update(overrides)
    op = ClearSkyCreateOrderOperator(task_id=task_id, **kwargs)
    op.lookup_interval = 0.2
    return op


def previous_month(emu: Any) -> tuple[str, str]:
    first = emu.control.now().date().replace(day=1)
    last = first - dt.timedelta(days=1)
    return last.replace(day=1).isoformat(), last.isoformat()


# ----------------------------------------------------------------------------- estimate


def test_estimate_returns_small_summary_with_notice(emu: Any) -> None:
    op = ClearSkyEstimateOrderOperator(task_id="estimate", **settings_for(emu))
    summary = op.execute(context())

    json.dumps(summary)
    assert summary["currency"] == "EUR"
    assert summary["current_month_cost"] > 0 and summary["next_month_cost"] > 0
    assert summary["recurring"] is True
    # 0.06° x 0.04° at 55.6°N: about 3.77 km x 4.45 km
    assert summary["requested_area_km2"] == pytest.approx(16.76, rel=0.01)
    assert summary["billed_area_km2"] == pytest.approx(summary["requested_area_km2"], rel=0.01)
    assert summary["billed_to_requested_ratio"] == pytest.approx(1.0, abs=0.01)
    assert summary["image_dates"] and all(len(day) == 10 for day in summary["image_dates"])
    assert summary["image_date_count"] == len(summary["image_dates"])
    assert summary["cancellation_date"]
    assert "EMULATOR PLACEHOLDER" in summary["Attribution"]  # passed through unchanged
    assert emu.control.order_count() == 0


def test_estimate_historical_order_has_no_next_month_cost(emu: Any) -> None:
    first, last = previous_month(emu)
    op = ClearSkyEstimateOrderOperator(task_id="estimate", **settings_for(emu, date_from=first, date_to=last))
    summary = op.execute(context())
    assert summary["recurring"] is False
    assert summary["next_month_cost"] is None
    assert summary["image_dates"][0] >= first and summary["image_dates"][-1] <= last


def test_estimate_bad_settings_fail_before_any_request(emu: Any) -> None:
    op = ClearSkyEstimateOrderOperator(task_id="estimate", **settings_for(emu, date_from="2026-05-15"))
    with pytest.raises(AirflowFailException, match="first day of a month; use 2026-05-01"):
        op.execute(context())
    assert emu.control.request_count() == 0


@pytest.mark.parametrize(
    ("setting", "value", "spelling"),
    [
        ("model", "Stratus-2", "Stratus2"),
        ("satellite_constellations", ["Sentinel1", "Sentinel-2", "Landsat89"], "Sentinel2"),
        ("satellite_constellations", ["Sentinel1", "sentinel 2", "Landsat89"], "Sentinel2"),
    ],
)
@pytest.mark.parametrize("operator", [ClearSkyEstimateOrderOperator, ClearSkyCreateOrderOperator])
def test_display_names_are_refused_before_any_request(
    emu: Any, operator: Any, setting: str, value: Any, spelling: str
) -> None:
    extra = {"max_cost": 10.0} if operator is ClearSkyCreateOrderOperator else {}
    op = operator(task_id="order", **settings_for(emu, **{setting: value}), **extra)
    with pytest.raises(AirflowFailException, match=rf"{setting}.*display name.*'{spelling}'"):
        op.execute(context(FakeTI(), DictStore()))
    assert emu.control.request_count() == 0


def test_estimate_api_validation_error_fails_without_retry(emu: Any) -> None:
    op = ClearSkyEstimateOrderOperator(task_id="estimate", **settings_for(emu, model="NoSuchModel"))
    with pytest.raises(AirflowFailException, match="Unknown model"):
        op.execute(context())


# ----------------------------------------------------------------------------- create


def test_create_sends_exactly_the_estimated_payload(emu: Any, spy: Any) -> None:
    ti = FakeTI()
    guid = create_op(emu).execute(context(ti, DictStore()))

    estimated, created = spy.bodies(ESTIMATE), spy.bodies(ORDERS)
    assert len(estimated) == 1 and len(created) == 1
    # The same body, but for the create-only TileDeduplication and the estimate-only SimulatedEuroUsage
    # (sent as null, as the vendor's client does).
    assert estimated[0].pop("SimulatedEuroUsage") is None
    assert {k: v for k, v in created[0].items() if k != "TileDeduplication"} == estimated[0]
    assert emu.control.order_count() == 1
    order = emu.control.order(guid)
    assert order["To"] is None and order["ImageFrequency"] == 7
    assert ti.xcoms["order_status"] == order["OrderingProcessStatus"]
    summary = ti.xcoms["order_summary"]
    assert summary["order_guid"] == guid and summary["adopted"] is False
    assert summary["estimate"]["current_month_cost"] > 0
    assert "EMULATOR PLACEHOLDER" in summary["Attribution"]
    assert ti.xcoms["clearsky_order_url"].endswith(f"/orders/{guid}")
    assert ti.xcoms["_link_ClearSkyOrderLink"] == ti.xcoms["clearsky_order_url"]


def test_tile_order_payload_matches_with_deduplication(emu: Any, spy: Any) -> None:
    tiles = ClearSkyOptimizeTilesOperator(task_id="optimize", wkt=AOI_WKT).execute(context())
    assert tiles["tile_guids"] or tiles["minitile_guids"]
    op = create_op(
        emu,
        wkt=None,
        tile_guids=tiles["tile_guids"] or None,
        minitile_guids=json.dumps(tiles["minitile_guids"]) if tiles["minitile_guids"] else None,
        tile_deduplication="True",
    )
    guid = op.execute(context(FakeTI(), DictStore()))
    created, estimated = spy.bodies(ORDERS)[0], spy.bodies(ESTIMATE)[0]
    assert created.pop("TileDeduplication") is True and estimated.pop("SimulatedEuroUsage") is None
    assert created == estimated
    order = emu.control.order(guid)
    assert sorted(order["MiniTiles"] or []) == sorted(tiles["minitile_guids"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"max_cost": 1.0}, "this month's cost .* exceeds max_cost 1.00"),
        ({"max_cost": "1"}, "exceeds max_cost 1.00"),
        ({"max_cost": 100.0, "max_next_month_cost": 0.5}, "next month's cost .* exceeds max_next_month_cost 0.50"),
    ],
)
def test_budget_refusal_orders_nothing(emu: Any, overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(AirflowFailException, match=message):
        create_op(emu, **overrides).execute(context(FakeTI(), DictStore()))
    assert emu.control.order_count() == 0
    assert emu.control.request_count("/api/tasking/orders", method="POST") == 0


def test_no_candidate_dates_is_refused(emu: Any) -> None:
    first, _ = previous_month(emu)
    start = dt.date.fromisoformat(first)
    # A two-day window whose weekly schedule (counted from the 5th) has no date in it.
    overrides = {
        "date_from": first,
        "date_to": (start + dt.timedelta(days=1)).isoformat(),
        "reference_date": (start + dt.timedelta(days=4)).isoformat(),
    }
    with pytest.raises(AirflowFailException, match="no candidate image date"):
        create_op(emu, **overrides).execute(context(FakeTI(), DictStore()))
    assert emu.control.order_count() == 0


def test_no_budget_needs_explicit_none(emu: Any) -> None:
    with pytest.raises(TypeError, match="max_cost is required"):
        ClearSkyCreateOrderOperator(task_id="create", **settings_for(emu))
    guid = create_op(emu, max_cost=None).execute(context(FakeTI(), DictStore()))
    assert emu.control.order(guid)


def test_insufficient_credits_fails_without_retry(emu: Any) -> None:
    emu.control.update_account(emu.api_key, euro_credit_amount=0.5)
    with pytest.raises(AirflowFailException, match="Insufficient order credits"):
        create_op(emu).execute(context(FakeTI(), DictStore()))
    assert emu.control.order_count() == 0


# ----------------------------------------------------------------------------- never twice


def test_dropped_connection_after_commit_adopts_the_order(emu: Any) -> None:
    emu.control.add_fault("drop_after_commit", path="/api/tasking/orders", method="POST")
    ti = FakeTI()
    guid = create_op(emu).execute(context(ti, DictStore()))

    assert emu.control.order_count() == 1
    assert emu.control.orders()[0]["TaskOrderGuid"] == guid
    assert emu.control.request_count("/api/tasking/orders", method="POST") == 1
    assert ti.xcoms["order_summary"]["adopted"] is True


TRIANGLE = "POLYGON ((12.50 55.60, 12.56 55.60, 12.50 55.64, 12.50 55.60))"


@pytest.mark.parametrize("echo", ["exact", "bbox"])
def test_a_lost_create_answer_is_adopted_whichever_way_the_area_is_echoed(emu: Any, echo: str) -> None:
    emu.control.set_order_geometry_echo(echo)
    emu.control.add_fault("drop_after_commit", path="/api/tasking/orders", method="POST")
    ti = FakeTI()
    guid = create_op(emu, wkt=TRIANGLE).execute(context(ti, DictStore()))
    assert emu.control.order_count() == 1 and emu.control.orders()[0]["TaskOrderGuid"] == guid
    assert ti.xcoms["order_summary"]["adopted"] is True


def test_more_than_one_order_that_could_be_ours_fails_loudly_and_orders_nothing(emu: Any) -> None:
    run_start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    first = create_op(emu).execute(context(FakeTI(1), run_start=run_start))
    second = create_op(emu).execute(context(FakeTI(1), run_start=run_start))  # e.g. placed by hand meanwhile
    with pytest.raises(AirflowFailException, match="2 orders could be the one") as failure:
        create_op(emu).execute(context(FakeTI(2), run_start=run_start))
    assert first in str(failure.value) and second in str(failure.value)
    assert emu.control.order_count() == 2


def test_create_timing_out_then_succeeding_on_the_server_adopts_the_order(emu: Any) -> None:
    # The server sleeps 2 s, then creates the order; the hook gave up after its 1 s read timeout.
    emu.control.add_fault("latency", path="/api/tasking/orders", method="POST", delay=2.0)
    guid = create_op(emu).execute(context(FakeTI(), DictStore()))

    assert emu.control.order_count() == 1
    assert emu.control.orders()[0]["TaskOrderGuid"] == guid
    assert emu.control.request_count("/api/tasking/orders", method="POST") == 1


def test_unknown_outcome_with_no_order_is_retryable_and_the_retry_creates_once(emu: Any) -> None:
    # The connection is reset before the server acts: the client cannot know, the order does not exist.
    emu.control.add_fault("reset", path="/api/tasking/orders", method="POST")
    store = DictStore()
    with pytest.raises(OrderOutcomeUnknownError, match="outcome is unknown") as failure:
        create_op(emu, outcome_timeout=0.5).execute(context(FakeTI(1), store))
    assert not isinstance(failure.value, AirflowFailException)
    assert emu.control.order_count() == 0

    guid = create_op(emu).execute(context(FakeTI(2), store))
    assert emu.control.order_count() == 1 and emu.control.orders()[0]["TaskOrderGuid"] == guid


@needs_state_store
def test_retry_after_success_adopts_the_stored_order(emu: Any, spy: Any) -> None:
    store = DictStore()
    first = create_op(emu).execute(context(FakeTI(1), store))
    assert store.values["clearsky_order_guid"] == first

    ti = FakeTI(2)
    second = create_op(emu).execute(context(ti, store))
    assert second == first
    assert emu.control.order_count() == 1
    assert len(spy.bodies(ORDERS)) == 1
    assert ti.xcoms["order_summary"]["adopted"] is True
    assert ti.xcoms["clearsky_order_url"].endswith(first)


@needs_state_store
def test_worker_killed_between_create_and_storing_the_guid(emu: Any) -> None:
    store = DyingStore()
    with pytest.raises(SystemExit):
        create_op(emu).execute(context(FakeTI(1), store))
    assert emu.control.order_count() == 1
    assert "clearsky_order_guid" not in store.values
    assert store.values["clearsky_order_attempt"]["fingerprint"].startswith("sha256:")

    retry_store = DictStore()
    retry_store.values = store.values
    guid = create_op(emu).execute(context(FakeTI(2), retry_store))
    assert emu.control.order_count() == 1
    assert emu.control.orders()[0]["TaskOrderGuid"] == guid


@needs_state_store
def test_identical_order_that_existed_before_is_not_adopted(emu: Any) -> None:
    # Someone ordered the identical thing earlier: this task still places its own order, and its retry
    # adopts its own order, not the older one.
    older = create_op(emu).execute(context(FakeTI(), DictStore()))
    store = DyingStore()
    with pytest.raises(SystemExit):
        create_op(emu).execute(context(FakeTI(1), store))
    assert emu.control.order_count() == 2
    retry_store = DictStore()
    retry_store.values = store.values
    mine = create_op(emu).execute(context(FakeTI(2), retry_store))
    assert mine != older
    assert emu.control.order_count() == 2


def test_changed_settings_are_not_adopted(emu: Any) -> None:
    store = DictStore()
    first = create_op(emu).execute(context(FakeTI(1), store))
    second = create_op(emu, image_frequency=5).execute(context(FakeTI(2), store))
    assert second != first
    assert emu.control.order_count() == 2


def test_cancelled_order_is_not_adopted_by_a_later_try(emu: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    emu.control.update_account(emu.api_key, auto_accept=False)
    store = DictStore()
    first = create_op(emu).execute(context(FakeTI(1), store))
    ClearSkyCancelOrderOperator(task_id="cancel", order_guid=first).execute(context())
    second = create_op(emu).execute(context(FakeTI(2), store))
    assert second != first
    assert emu.control.order_count() == 2


def test_without_state_store_a_retry_adopts_an_order_created_since_the_run_started(emu: Any) -> None:
    run_start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    first = create_op(emu).execute(context(FakeTI(1), run_start=run_start))
    second = create_op(emu).execute(context(FakeTI(2), run_start=run_start))
    assert second == first
    assert emu.control.order_count() == 1


def test_without_state_store_an_order_older_than_the_run_is_not_adopted(emu: Any) -> None:
    older = create_op(emu).execute(context(FakeTI(1)))
    run_start = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)  # the run started after it
    mine = create_op(emu).execute(context(FakeTI(2), run_start=run_start))
    assert mine != older
    assert emu.control.order_count() == 2


# ----------------------------------------------------------------------------- templated AOI files


def test_templated_aoi_files_render(emu: Any, tmp_path: Any) -> None:
    from airflow.sdk import DAG

    (tmp_path / "field.wkt").write_text(AOI_WKT + "\n")
    (tmp_path / "field.geojson").write_text(json.dumps(AOI_GEOJSON))
    with DAG("aoi_files", schedule=None, template_searchpath=[str(tmp_path)]) as dag:
        by_wkt = ClearSkyEstimateOrderOperator(task_id="wkt", **settings_for(emu, wkt="field.wkt"))
        by_geojson = ClearSkyEstimateOrderOperator(
            task_id="geojson", **settings_for(emu, wkt=None, geojson="field.geojson")
        )
    env = dag.get_template_env()
    for op in (by_wkt, by_geojson):
        op.render_template_fields({"ds": "2026-01-01"}, jinja_env=env)
    assert by_wkt.wkt.strip() == AOI_WKT
    assert json.loads(by_geojson.geojson) == AOI_GEOJSON
    results = [op.execute(context()) for op in (by_wkt, by_geojson)]
    assert results[0]["billed_area_km2"] == results[1]["billed_area_km2"]
    assert results[0]["current_month_cost"] == results[1]["current_month_cost"]


# ----------------------------------------------------------------------------- tiles


def test_search_tiles_returns_guid_lists(emu: Any) -> None:
    found = ClearSkySearchTilesOperator(task_id="search", wkt=AOI_WKT).execute(context())
    assert set(found) == {"tile_guids", "minitile_guids"}
    assert found["tile_guids"]
    inside = ClearSkySearchTilesOperator(task_id="minis", tile_guid_for_minitiles=found["tile_guids"][0]).execute(
        context()
    )
    assert inside["minitile_guids"]


def test_search_tiles_needs_one_selector(emu: Any) -> None:
    with pytest.raises(AirflowFailException, match="exactly one"):
        ClearSkySearchTilesOperator(task_id="search").execute(context())
    assert emu.control.request_count() == 0


def test_optimize_tiles_from_geojson_text(emu: Any) -> None:
    found = ClearSkyOptimizeTilesOperator(task_id="optimize", geojson=json.dumps(AOI_GEOJSON)).execute(context())
    assert found["tile_guids"] or found["minitile_guids"]


# ----------------------------------------------------------------------------- cancel


def cancel(guid: str) -> dict[str, Any]:
    ti = FakeTI()
    result = ClearSkyCancelOrderOperator(task_id="cancel", order_guid=guid).execute(context(ti))
    json.dumps(result)
    assert ti.xcoms["clearsky_order_url"].endswith(guid)
    return result


@pytest.fixture
def emulator_now(emu: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The operators' notion of now follows the emulator's clock (the server's)."""
    monkeypatch.setattr(orders, "utc_now", emu.control.now)
    return emu.control


def test_cancel_in_review_withdraws_and_is_idempotent(emu: Any, emulator_now: Any) -> None:
    emu.control.update_account(emu.api_key, auto_accept=False)
    guid = create_op(emu).execute(context(FakeTI(), DictStore()))
    assert emu.control.order(guid)["OrderingProcessStatus"] == "Review"

    result = cancel(guid)
    assert result["outcome"] == "canceled"
    assert result["status_before"] == "Review" and result["status_after"] == "Canceled"
    assert "withdraws it completely" in result["message"]
    assert emu.control.order(guid)["ChargedEur"] == 0  # refunded

    again = cancel(guid)
    assert again["outcome"] == "already_canceled"
    assert emu.control.request_count("/api/tasking/orders/cancel") == 1


def test_cancel_accepted_recurring_stops_the_renewal_and_is_idempotent(emu: Any, emulator_now: Any) -> None:
    guid = create_op(emu).execute(context(FakeTI(), DictStore()))
    assert emu.control.order(guid)["OrderingProcessStatus"] != "Review"

    result = cancel(guid)
    assert result["outcome"] == "renewal_stopped"
    month_end = (emu.control.now().date().replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
    assert result["coverage_until"] == month_end.isoformat()
    assert emu.control.order(guid)["To"] is None  # still the recurring order that was ordered

    again = cancel(guid)  # no documented field tells a stopped renewal: the cancel is sent again, harmlessly
    assert again["outcome"] == "renewal_stopped" and again["coverage_until"] == month_end.isoformat()
    assert emu.control.request_count("/api/tasking/orders/cancel") == 2
    assert emu.control.charges("renewal") == []


def test_cancel_accepted_historical_order_fails_clearly_and_changes_nothing(emu: Any, emulator_now: Any) -> None:
    first, last = previous_month(emu)
    guid = create_op(emu, date_from=first, date_to=last).execute(context(FakeTI(), DictStore()))
    before = emu.control.order(guid)
    with pytest.raises(AirflowFailException, match=r"historical order .* cannot cancel it"):
        ClearSkyCancelOrderOperator(task_id="cancel", order_guid=guid).execute(context())
    assert emu.control.request_count("/api/tasking/orders/cancel") == 0
    assert emu.control.order(guid)["OrderingProcessStatus"] == before["OrderingProcessStatus"]


def test_cancel_unknown_order_fails_without_retry(emu: Any) -> None:
    with pytest.raises(AirflowFailException, match=r"not found|no order"):
        ClearSkyCancelOrderOperator(task_id="cancel", order_guid="3f2b1c9e-0000-4000-8000-000000000000").execute(
            context()
        )


@pytest.mark.parametrize(
    ("cancel_at", "renewed", "coverage_until"),
    [
        (dt.datetime(2026, 6, 30, 23, 59, tzinfo=dt.UTC), None, "2026-06-30"),
        (dt.datetime(2026, 7, 1, 0, 1, tzinfo=dt.UTC), "2026-07", "2026-07-31"),
    ],
    ids=["before-cutoff", "after-cutoff"],
)
def test_cancel_around_the_cutoff(
    emu: Any, emulator_now: Any, cancel_at: dt.datetime, renewed: str | None, coverage_until: str
) -> None:
    emu.control.set_time(dt.datetime(2026, 6, 10, 12, 0, tzinfo=dt.UTC))
    guid = create_op(emu, date_from="2026-06-01").execute(context(FakeTI(), DictStore()))
    emu.control.set_time(cancel_at)

    result = cancel(guid)
    assert result["outcome"] == "renewal_stopped"
    assert result["renewal_already_happened_for"] == renewed
    assert result["coverage_until"] == coverage_until
    assert emu.control.order(guid)["To"] is None
    renewals = [c for c in emu.control.charges("renewal") if c["order"] == guid]
    if renewed:
        assert len(renewals) == 1
        assert "Past the 2026-07-01T00:00:00Z cut-off" in result["message"]
        assert "stops the 2026-08 renewal" in result["message"]
        assert result["cutoff"] == "2026-08-01T00:00:00Z"
    else:
        assert renewals == []
        assert "will not renew for 2026-07" in result["message"]
        assert result["cutoff"] == "2026-07-01T00:00:00Z"
    # A month later nothing renews any more.
    emu.control.set_time(dt.datetime(2026, 9, 2, tzinfo=dt.UTC))
    assert len([c for c in emu.control.charges("renewal") if c["order"] == guid]) == len(renewals)
