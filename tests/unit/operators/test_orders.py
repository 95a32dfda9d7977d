"""Unit tests of the ordering operators' rules: fingerprint, adoption, area, cancel plan, templating."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from airflow_provider_clearsky._compat import AirflowFailException
from airflow_provider_clearsky.exceptions import AmbiguousOrderError
from airflow_provider_clearsky.hooks.endpoints import create_order_payload
from airflow_provider_clearsky.models import OrderRequest, TaskOrder
from airflow_provider_clearsky.operators.orders import (
    ClearSkyCancelOrderOperator,
    ClearSkyCreateOrderOperator,
    ClearSkyEstimateOrderOperator,
    ClearSkyOptimizeTilesOperator,
    ClearSkySearchTilesOperator,
)
from airflow_provider_clearsky.utils import area, cancellation, coercion
from airflow_provider_clearsky.utils import orders as order_rules
from tests.support.orders_support import (
    AOI_GEOJSON,
    AOI_WKT,
    CONSTELLATIONS,
    BodySpy,
    context,
    install_spy,
)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> BodySpy:
    return install_spy(monkeypatch)


UTC = dt.UTC
TILE_A = "c3528462-02fc-4301-bb37-8d226b45f149"
TILE_B = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"


def request(**overrides: Any) -> OrderRequest:
    values: dict[str, Any] = {
        "wkt": AOI_WKT,
        "model": "Stratus2",
        "satellite_constellations": CONSTELLATIONS,
        "image_frequency": 7,
        "date_from": "2026-06-01",
    }
    values.update(overrides)
    return OrderRequest(**values)


def fingerprint(**overrides: Any) -> str:
    dedup = overrides.pop("tile_deduplication", False)
    return order_rules.order_fingerprint(create_order_payload(request(**overrides), dedup))


def listed(req: OrderRequest, guid: str = "11111111-1111-4111-8111-111111111111", **changes: Any) -> TaskOrder:
    """The order as the API would list it after creating ``req`` (its WKT rounded to 7 decimals)."""
    import shapely

    payload = req.to_payload()
    wkt = payload["Wkt"]
    data: dict[str, Any] = {
        "TaskOrderGuid": guid,
        "OrderingProcessStatus": "Preparing",
        "Model": payload["Model"],
        "SatelliteConstellations": list(reversed(payload["SatelliteConstellations"])),
        "From": payload["From"],
        "To": payload["To"],
        "ImageFrequency": payload["ImageFrequency"],
        "ReferenceDate": payload["ReferenceDate"],
        "StorageMonths": payload["StorageMonths"],
        "ApiRequests": payload["ApiRequests"],
        "Wkt": shapely.to_wkt(shapely.from_wkt(wkt), rounding_precision=7) if wkt else None,
        "Tiles": payload["TileGuids"],
        "MiniTiles": payload["MiniTileGuids"],
        "CreatedDate": "2026-06-10T12:00:00Z",
    }
    data.update(changes)
    return TaskOrder.model_validate(data)


# ----------------------------------------------------------------------------- fingerprint


def test_fingerprint_is_stable_and_ignores_list_order() -> None:
    assert fingerprint() == fingerprint()
    assert fingerprint().startswith("sha256:") and len(fingerprint()) == 7 + 64
    assert fingerprint(satellite_constellations=list(reversed(CONSTELLATIONS))) == fingerprint()
    assert fingerprint(model=" Stratus2 ") == fingerprint()
    grid = {"wkt": None, "tile_guids": [TILE_A, TILE_B]}
    assert fingerprint(**grid) == fingerprint(wkt=None, tile_guids=[TILE_B, TILE_A.upper()])
    # Same AOI as GeoJSON-derived WKT text is the same request body only if the text is the same: the
    # fingerprint is of the body, so WKT and GeoJSON modes differ (they are different requests).
    assert fingerprint(wkt=None, geo_json=AOI_GEOJSON) != fingerprint()


@pytest.mark.parametrize(
    "change",
    [
        {"date_from": "2026-07-01"},
        {"date_to": "2026-06-30"},
        {"image_frequency": 5},
        {"reference_date": "2026-06-03"},
        {"storage_months": 2},
        {"api_requests": 2},
        {"satellite_constellations": ["Sentinel2", "Sentinel1", "Landsat89", "Sentinel3"]},
        {"model": "Stratus3"},
        {"wkt": AOI_WKT.replace("12.56", "12.57")},
    ],
)
def test_fingerprint_changes_with_every_defining_setting(change: dict[str, Any]) -> None:
    assert fingerprint(**change) != fingerprint()


def test_fingerprint_includes_tile_deduplication() -> None:
    grid = {"wkt": None, "tile_guids": [TILE_A]}
    assert fingerprint(**grid, tile_deduplication=True) != fingerprint(**grid)


# ----------------------------------------------------------------------------- adoption rules


def test_listed_order_matches_its_request_despite_rounding_and_order() -> None:
    req = request()
    assert order_rules.order_mismatches(listed(req), req) == []
    grid = request(wkt=None, tile_guids=[TILE_A, TILE_B])
    assert order_rules.order_mismatches(listed(grid, Tiles=[TILE_B, TILE_A]), grid) == []


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"Model": "Stratus3"}, "Model"),
        ({"SatelliteConstellations": ["Sentinel2"]}, "SatelliteConstellations"),
        ({"From": "2026-07-01"}, "From"),
        ({"To": "2026-06-30"}, "To"),
        ({"ImageFrequency": 1}, "ImageFrequency"),
        ({"ReferenceDate": "2026-06-02"}, "ReferenceDate"),
        ({"StorageMonths": 3}, "StorageMonths"),
        ({"ApiRequests": 4}, "ApiRequests"),
        (
            {"Wkt": "GEOMETRYCOLLECTION (POLYGON ((12.53 55.6, 12.59 55.6, 12.59 55.64, 12.53 55.64, 12.53 55.6)))"},
            "Wkt",
        ),
        ({"Wkt": None, "Tiles": [TILE_A]}, "tile order"),
    ],
)
def test_any_differing_field_prevents_adoption(changes: dict[str, Any], reason: str) -> None:
    req = request()
    reasons = order_rules.order_mismatches(listed(req, **changes), req)
    assert any(reason in text for text in reasons), reasons


@pytest.mark.parametrize(
    "echo",
    [
        "GEOMETRYCOLLECTION (POLYGON ((12.5 55.6, 12.56 55.6, 12.56 55.64, 12.5 55.64, 12.5 55.6)))",  # its box
        "POLYGON ((12.5 55.6, 12.5 55.64, 12.56 55.64, 12.56 55.6, 12.5 55.6))",  # reoriented, bare
        "MULTIPOLYGON (((12.5 55.6, 12.56 55.6, 12.56 55.64, 12.5 55.64, 12.5 55.6)))",
    ],
)
def test_an_echoed_bounding_box_or_normalised_area_is_still_ours(echo: str) -> None:
    req = request()
    assert order_rules.order_mismatches(listed(req, Wkt=echo), req) == []


def test_an_unreadable_echo_of_an_otherwise_identical_order_fails_loudly() -> None:
    req = request()
    with pytest.raises(AmbiguousOrderError, match="11111111-1111-4111-8111-111111111111"):
        order_rules.order_mismatches(listed(req, Wkt="CIRCLE (12.5 55.6, 1)"), req)
    # an order that differs elsewhere is not ours, whatever its area says
    assert order_rules.order_mismatches(listed(req, Wkt="CIRCLE (12.5 55.6, 1)", ImageFrequency=1), req)


def test_unreported_optional_fields_do_not_prevent_adoption() -> None:
    req = request()
    order = TaskOrder.model_validate({"TaskOrderGuid": "x", "Model": "stratus2", "From": "2026-06-01", "To": None})
    assert order_rules.order_mismatches(order, req) == []
    # ... but a historical request never matches an order that does not say it is historical.
    order = TaskOrder.model_validate({"TaskOrderGuid": "x", "Model": "Stratus2", "From": "2026-06-01"})
    assert order_rules.order_mismatches(order, request(date_to="2026-06-30"))


def test_adoption_with_a_record_uses_the_known_list_not_the_clocks() -> None:
    req = request()
    old = listed(req, "aaaaaaaa-0000-4000-8000-000000000001", CreatedDate="2020-01-01T00:00:00Z")
    new = listed(req, "bbbbbbbb-0000-4000-8000-000000000002", CreatedDate="2020-01-01T00:00:01Z")
    other = listed(req, "cccccccc-0000-4000-8000-000000000003", ImageFrequency=1)
    cancelled = listed(req, "dddddddd-0000-4000-8000-000000000004", OrderingProcessStatus="Canceled")
    found = order_rules.adoptable_orders(
        [old, new, other, cancelled],
        req,
        known=[old.guid.upper()],
        since=None,
        clock_skew=dt.timedelta(minutes=10),
    )
    assert [order.guid for order in found] == [new.guid]


def test_adoption_without_a_record_needs_creation_since_the_first_attempt() -> None:
    req = request()
    since = dt.datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
    skew = dt.timedelta(minutes=10)
    early = listed(req, "aaaaaaaa-0000-4000-8000-000000000001", CreatedDate="2026-06-10T11:49:00Z")
    within_skew = listed(req, "bbbbbbbb-0000-4000-8000-000000000002", CreatedDate="2026-06-10T11:51:00Z")
    later = listed(req, "cccccccc-0000-4000-8000-000000000003", CreatedDate="2026-06-10T12:30:00Z")
    undated = listed(req, "dddddddd-0000-4000-8000-000000000004", CreatedDate=None)
    found = order_rules.adoptable_orders(
        [later, early, undated, within_skew], req, known=None, since=since, clock_skew=skew
    )
    assert [order.guid for order in found] == [within_skew.guid, later.guid]  # oldest first
    assert order_rules.adoptable_orders([later], req, known=None, since=None, clock_skew=skew) == []


def test_attempt_record_round_trips_and_rejects_junk() -> None:
    record = order_rules.AttemptRecord("sha256:ab", "2026-06-10T12:00:00Z", ["A-B"])
    again = order_rules.AttemptRecord.from_json(json.loads(json.dumps(record.to_json())))
    assert again is not None and again.known == ["a-b"]
    assert again.since_time == dt.datetime(2026, 6, 10, 12, tzinfo=UTC)
    assert order_rules.AttemptRecord.from_json(None) is None
    assert order_rules.AttemptRecord.from_json("guid") is None


# ----------------------------------------------------------------------------- area, notices, conversions


def test_equal_area_matches_known_areas() -> None:
    import shapely

    # One degree square at the equator: 12,364 km² on the authalic sphere.
    assert area.equal_area_km2(shapely.box(0, 0, 1, 1)) == pytest.approx(12364, rel=0.002)
    # The same square at 60°N is about half of that (cos 60° = 0.5).
    assert area.equal_area_km2(shapely.box(0, 59.5, 1, 60.5)) == pytest.approx(12364 * 0.5, rel=0.005)
    two = request(wkt=f"GEOMETRYCOLLECTION ({AOI_WKT}, {AOI_WKT.replace('12.5', '13.5')})")
    assert order_rules.requested_area_km2(two) == pytest.approx(
        2 * order_rules.requested_area_km2(request()), rel=0.001
    )
    assert order_rules.requested_area_km2(request(wkt=None, tile_guids=[TILE_A])) is None


def test_notices_pass_through_unchanged() -> None:
    order = listed(request(), Attribution={"text": "© x"}, LicenceUrl="https://l", ProvenanceNote="p", Other=1)
    assert order_rules.notices(order) == {
        "Attribution": {"text": "© x"},
        "LicenceUrl": "https://l",
        "ProvenanceNote": "p",
    }


def test_templated_values_are_read_in_execute() -> None:
    assert coercion.as_int("x", "7") == 7 and coercion.as_int("x", 7) == 7 and coercion.as_int("x", "seven") == "seven"
    assert coercion.as_bool("x", "False") is False and coercion.as_bool("x", "true") is True
    assert coercion.as_cost("x", "250") == 250.0 and coercion.as_cost("x", None) is None
    with pytest.raises(ValueError, match="not an amount"):
        coercion.as_cost("max_cost", "None")  # only a literal None means no limit
    with pytest.raises(ValueError, match="zero or more"):
        coercion.as_cost("max_cost", -1)
    assert coercion.as_guid_list("t", f"['{TILE_A}', '{TILE_B}']") == [TILE_A, TILE_B]
    assert coercion.as_guid_list("t", f'["{TILE_A}"]') == [TILE_A]
    assert coercion.as_guid_list("t", f"{TILE_A}, {TILE_B}") == [TILE_A, TILE_B]
    assert coercion.as_guid_list("t", "None") is None


# ----------------------------------------------------------------------------- cancel plan


def order_at(status: str, **changes: Any) -> TaskOrder:
    data = {
        "TaskOrderGuid": "11111111-1111-4111-8111-111111111111",
        "OrderingProcessStatus": status,
        "From": "2026-06-01",
        "To": None,
        "CreatedDate": "2026-06-10T12:00:00Z",
    }
    data.update(changes)
    return TaskOrder.model_validate(data)


def test_cancel_plan_follows_the_rules() -> None:
    june = dt.datetime(2026, 6, 20, tzinfo=UTC)
    assert cancellation.plan_cancel(order_at("Review"), june).action == "cancel"
    assert cancellation.plan_cancel(order_at("Canceled"), june).outcome == "already_canceled"
    assert cancellation.plan_cancel(order_at("Denied"), june).outcome == "already_canceled"
    plan = cancellation.plan_cancel(order_at("UpToDate"), june)
    assert plan.action == "stop_renewal" and plan.renewal_already_happened_for is None
    assert plan.cutoff == dt.datetime(2026, 7, 1, tzinfo=UTC)
    # RenewalStopped is the emulator's invented field: the plan does not read it.
    assert cancellation.plan_cancel(order_at("UpToDate", RenewalStopped=True), june).action == "stop_renewal"
    refused = cancellation.plan_cancel(order_at("Completed", To="2026-06-30"), june)
    assert refused.action == "refuse" and "cannot cancel" in refused.message


def test_cancel_plan_around_the_cutoff() -> None:
    order = order_at("UpToDate")
    before = cancellation.plan_cancel(order, dt.datetime(2026, 6, 30, 23, 59, 59, tzinfo=UTC))
    after = cancellation.plan_cancel(order, dt.datetime(2026, 7, 1, 0, 0, 0, tzinfo=UTC))
    assert before.renewal_already_happened_for is None and before.coverage_until == "2026-06-30"
    assert after.renewal_already_happened_for == "2026-07" and after.coverage_until == "2026-07-31"
    assert after.cutoff == dt.datetime(2026, 8, 1, tzinfo=UTC)
    assert "already happened" in after.message and "2026-08" in after.message
    # December rolls over the year.
    assert cancellation.month_window(dt.datetime(2026, 12, 31, 23, 0, tzinfo=UTC))[1] == dt.datetime(
        2027, 1, 1, tzinfo=UTC
    )


# ----------------------------------------------------------------------------- operators without a server


ORDER_ARGS: dict[str, Any] = {
    "wkt": AOI_WKT,
    "model": "Stratus2",
    "satellite_constellations": CONSTELLATIONS,
    "date_from": "2026-06-01",
}


def test_every_user_facing_argument_is_templated() -> None:
    settings_fields = {
        "wkt",
        "geojson",
        "tile_guids",
        "minitile_guids",
        "model",
        "satellite_constellations",
        "image_frequency",
        "reference_date",
        "date_from",
        "date_to",
        "storage_months",
        "api_requests",
        "recurring",
        "clearsky_conn_id",
    }
    assert set(ClearSkyEstimateOrderOperator.template_fields) == settings_fields
    assert set(ClearSkyCreateOrderOperator.template_fields) == settings_fields | {
        "max_cost",
        "max_next_month_cost",
        "expect_image_dates",
        "tile_deduplication",
        "if_exists",
    }
    assert set(ClearSkyCancelOrderOperator.template_fields) == {"order_guid", "clearsky_conn_id"}
    assert {"wkt", "geojson", "tile_guids", "minitile_guids", "tile_guid_for_minitiles", "clearsky_conn_id"} == set(
        ClearSkySearchTilesOperator.template_fields
    )
    assert set(ClearSkyOptimizeTilesOperator.template_fields) == {"wkt", "geojson", "clearsky_conn_id"}
    for op in (ClearSkyEstimateOrderOperator, ClearSkyCreateOrderOperator, ClearSkySearchTilesOperator):
        assert set(op.template_ext) == {".wkt", ".geojson"}


def test_init_keeps_templated_values_as_given() -> None:
    op = ClearSkyCreateOrderOperator(
        task_id="c", max_cost="{{ var.value.budget }}", image_frequency="{{ params.f }}", **ORDER_ARGS
    )
    assert op.max_cost == "{{ var.value.budget }}" and op.image_frequency == "{{ params.f }}"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"date_from": "2026-06-15"}, "first day of a month"),
        ({"wkt": None}, "exactly one area"),
        ({"geojson": AOI_GEOJSON}, "exactly one area"),
        ({"image_frequency": "9"}, "from 1 \\(daily\\) to 7"),
        ({"wkt": "POINT (1 2)"}, "Polygon or MultiPolygon"),
        ({"tile_guids": "not-a-guid", "wkt": None}, "is not a GUID"),
        ({"model": ""}, "model"),
        ({"max_cost": "lots"}, "max_cost must be an amount"),
        ({"tile_deduplication": True}, "tile_deduplication: applies to tile/minitile orders only"),
    ],
)
def test_bad_settings_fail_before_any_request(
    overrides: dict[str, Any], message: str, clearsky_connection: str, spy: Any
) -> None:
    op = ClearSkyCreateOrderOperator(task_id="c", **{"max_cost": 10, **ORDER_ARGS, **overrides})
    with pytest.raises(AirflowFailException, match=message):
        op.execute(context())
    assert spy.calls == []


def test_month_window_idiom_renders_last_and_this_month() -> None:
    """Airflow 3's ``@monthly`` has a zero-length data interval: take the month from ``logical_date``."""
    import pendulum
    from airflow.sdk import DAG

    with DAG("monthly", schedule="@monthly", start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        last_month = ClearSkyEstimateOrderOperator(
            task_id="last_month",
            wkt=AOI_WKT,
            model="Stratus2",
            satellite_constellations=CONSTELLATIONS,
            date_from="{{ logical_date.subtract(months=1).start_of('month').to_date_string() }}",
            date_to="{{ logical_date.subtract(months=1).end_of('month').to_date_string() }}",
        )
        this_month = ClearSkyCreateOrderOperator(
            task_id="this_month",
            wkt=AOI_WKT,
            model="Stratus2",
            satellite_constellations=CONSTELLATIONS,
            date_from="{{ logical_date.start_of('month').to_date_string() }}",
            max_cost="{{ params.budget }}",
            params={"budget": 250},
        )
    run_at = pendulum.datetime(2026, 7, 1, tz="UTC")  # the @monthly run of July starts at 2026-07-01T00:00
    for op in (last_month, this_month):
        op.render_template_fields({"logical_date": run_at, "params": {"budget": 250}}, jinja_env=dag.get_template_env())
    assert (last_month.date_from, last_month.date_to) == ("2026-06-01", "2026-06-30")
    assert (this_month.date_from, this_month.date_to, this_month.max_cost) == ("2026-07-01", None, "250")
    assert last_month.order_request().date_to == dt.date(2026, 6, 30)


def test_a_triangle_echoed_as_its_bounding_box_is_still_ours() -> None:
    req = request(wkt="POLYGON ((12.5 55.6, 12.56 55.6, 12.5 55.64, 12.5 55.6))")
    box = "GEOMETRYCOLLECTION (POLYGON ((12.5 55.6, 12.56 55.6, 12.56 55.64, 12.5 55.64, 12.5 55.6)))"
    assert order_rules.order_mismatches(listed(req, Wkt=box), req) == []


def test_cancel_in_review_accepts_the_order_disappearing() -> None:
    """The docs: a cancel in Review removes the order completely; the service may stop listing it."""
    from types import SimpleNamespace

    from airflow_provider_clearsky.exceptions import NotFoundError

    guid = "11111111-1111-4111-8111-111111111111"
    review = TaskOrder.model_validate(
        {"TaskOrderGuid": guid, "OrderingProcessStatus": "Review", "Model": "Stratus2", "From": "2026-06-01"}
    )
    calls: list[str] = []

    def get_order(_: str) -> TaskOrder:
        calls.append("get")
        if len(calls) > 1:
            raise NotFoundError("no such order", status_code=404)
        return review

    hook = SimpleNamespace(
        get_order=get_order,
        cancel_order=lambda _: calls.append("cancel") or {"Data": None},
        settings=SimpleNamespace(order_url=lambda g: f"https://dashboard.example/orders/{g}"),
    )
    op = ClearSkyCancelOrderOperator(task_id="cancel", order_guid=guid)
    op.__dict__["hook"] = hook
    result = op.execute(context())
    assert calls == ["get", "cancel", "get"]
    assert result["outcome"] == "canceled" and result["status_after"] == "removed"
