"""Estimate/create validation, pricing, listing, details, lifecycle, renewal and cancellation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from airflow_provider_clearsky.emulator import DEMO_API_KEY
from airflow_provider_clearsky.emulator.handle import EmulatorHandle

from .conftest import AOI_WKT, POLY, data, error, order_body, utc


def status_of(client: httpx.Client, guid: str) -> str:
    return str(
        data(client.post("/api/tasking/orders/details", json={"Guids": [guid]}))["TaskOrders"][0][
            "OrderingProcessStatus"
        ]
    )


def test_estimate_shape_and_values(client: httpx.Client) -> None:
    est = data(client.post("/api/tasking/orders/estimate", json=order_body()))
    for f in [
        "StorageMonths",
        "ApiRequests",
        "SatelliteConstellations",
        "Model",
        "CancellationDate",
        "AreaKm2",
        "AreaKm2BeforeMinimum1Km2PerAoi",
        "CurrentMonthCost",
        "NextMonthCost",
        "Costs",
        "CurrentMonthCosts",
        "RecurringCostsEstimate",
        "Tiles",
        "MiniTiles",
        "AreasOfInterestWkt",
        "ImageDates",
        "Attribution",
    ]:
        assert f in est, f
    assert "PLACEHOLDER" in est["Attribution"]
    # 0.05 x 0.05 degrees at 50 N is about 3.58 km x 5.56 km.
    assert 19.5 < est["AreaKm2"] < 20.3
    assert est["CurrentMonthCost"] == pytest.approx(est["AreaKm2"] * 0.20, abs=0.01)
    assert est["Costs"]["CurrencyCode"] == "EUR"
    assert est["CurrentMonthCosts"] == {"TotalCost": est["CurrentMonthCost"], "CurrencyCode": "EUR"}
    assert est["NextMonthCost"] == 0 and est["RecurringCostsEstimate"]["TotalCost"] == 0
    assert est["ImageDates"] == ["2025-05-07", "2025-05-14", "2025-05-21", "2025-05-28"]
    assert est["CancellationDate"] == "2025-06-30"
    assert est["AreasOfInterestWkt"].startswith("GEOMETRYCOLLECTION")


def test_estimate_recurring_minimum_area_bare_polygon_and_geojson(client: httpx.Client) -> None:
    tiny = "POLYGON ((8.6 50.1, 8.605 50.1, 8.605 50.103, 8.6 50.103, 8.6 50.1))"  # ~0.12 km2
    est = data(
        client.post(
            "/api/tasking/orders/estimate", json=order_body(Wkt=tiny, To=None, From="2025-06-01", ImageFrequency=1)
        )
    )
    assert est["AreaKm2BeforeMinimum1Km2PerAoi"] < 0.2 and est["AreaKm2"] == 0.5
    assert est["ImageDates"][0] == "2025-06-01" and est["ImageDates"][-1] == "2025-06-30"
    assert est["NextMonthCost"] == pytest.approx(0.1, abs=0.01)
    gj = {
        "type": "GeometryCollection",
        "geometries": [
            {"type": "Polygon", "coordinates": [[[8.6, 50.1], [8.65, 50.1], [8.65, 50.15], [8.6, 50.15], [8.6, 50.1]]]}
        ],
    }
    est2 = data(client.post("/api/tasking/orders/estimate", json=order_body(Wkt=None, GeoJson=gj)))
    est1 = data(client.post("/api/tasking/orders/estimate", json=order_body()))
    assert est2["AreaKm2"] == est1["AreaKm2"]


def test_spend_tiers_and_mode_factors(client: httpx.Client) -> None:
    base = data(client.post("/api/tasking/orders/estimate", json=order_body()))
    tiered = data(client.post("/api/tasking/orders/estimate", json=order_body(SimulatedEuroUsage=2000.0)))
    assert tiered["CurrentMonthCost"] == pytest.approx(base["AreaKm2"] * 0.05, abs=0.01)
    fast = data(
        client.post(
            "/api/tasking/orders/estimate",
            json=order_body(Model="Stratus2Fast", SatelliteConstellations=["Sentinel1", "Sentinel2", "Landsat89"]),
        )
    )
    assert fast["CurrentMonthCost"] == pytest.approx(base["AreaKm2"] * (0.18 + 0.02), abs=0.01)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"Wkt": None}, "Wkt"),
        ({"GeoJson": {"type": "Polygon", "coordinates": [[[8, 50], [8.1, 50], [8.1, 50.1], [8, 50]]]}}, "Wkt"),
        ({"TileGuids": ["00000000-0000-0000-0000-000000000000"], "Wkt": None}, "TileGuids"),
        ({"Model": "Cumulus"}, "Model"),
        ({"Model": None}, "Model"),
        ({"SatelliteConstellations": ["Sentinel1", "Sentinel2"]}, "SatelliteConstellations"),
        ({"SatelliteConstellations": ["Sentinel1", "Sentinel2", "Landsat89", "Sentinel7"]}, "SatelliteConstellations"),
        ({"From": "2025-05-02"}, "From"),
        ({"To": "2025-04-30"}, "To"),
        ({"ImageFrequency": 8}, "ImageFrequency"),
        ({"ImageFrequency": 0}, "ImageFrequency"),
        ({"StorageMonths": 0}, "StorageMonths"),
        ({"ApiRequests": 0}, "ApiRequests"),
        ({"Wkt": "GEOMETRYCOLLECTION (POINT (8 50))"}, "Wkt"),
        ({"Wkt": "POLYGON ((8.6 50.1, 8.6005 50.1, 8.6005 50.2, 8.6 50.2, 8.6 50.1))"}, "Wkt"),  # side < 150 m
        ({"Wkt": "POLYGON ((8.6 50.1, 8.7 50.2, 8.7001 50.2001, 8.6 50.1))"}, "Wkt"),  # < 5 % of bbox
        ({"Wkt": "not wkt"}, "Wkt"),
    ],
)
def test_validation_992(client: httpx.Client, emu: EmulatorHandle, overrides: dict[str, Any], field: str) -> None:
    for path in ("/api/tasking/orders/estimate", "/api/tasking/orders"):
        body = error(client.post(path, json=order_body(**overrides)), 400, 992)
        assert body["Error"]["Message"] == "One or more validation errors occurred."
        assert field in body["Data"] and all(isinstance(m, str) for m in body["Data"][field])
    assert emu.control.order_count() == 0


def test_create_charges_and_is_not_idempotent(client: httpx.Client, emu: EmulatorHandle) -> None:
    before = emu.control.account(DEMO_API_KEY)["EuroCreditAmount"]
    est = data(client.post("/api/tasking/orders/estimate", json=order_body()))
    a = data(
        client.post(
            "/api/tasking/orders",
            json=order_body(),
            params={"automaticOrderGuid": "5f0c2a1e-0000-4000-8000-000000000001"},
        )
    )
    b = data(client.post("/api/tasking/orders", json=order_body()))
    assert a["TaskOrderGuid"] != b["TaskOrderGuid"]
    assert emu.control.order_count() == 2
    after = emu.control.account(DEMO_API_KEY)["EuroCreditAmount"]
    assert before - after == pytest.approx(2 * est["CurrentMonthCost"], abs=0.02)
    for f in [
        "TaskOrderGuid",
        "BillingCycle",
        "OrderingProcessStatus",
        "StorageMonths",
        "ApiRequests",
        "ImageFrequency",
        "TaskOrderAreaKm2",
        "Model",
        "ReferenceDate",
        "From",
        "To",
        "SatelliteConstellations",
        "Tiles",
        "MiniTiles",
        "Wkt",
        "CreatedDate",
    ]:
        assert f in a
    assert a["OrderingProcessStatus"] == "Preparing" and a["CreatedDate"].startswith("2025-06-10T12:")
    assert len(emu.control.charges("order")) == 2


def test_994_insufficient_order_credits(client: httpx.Client, emu: EmulatorHandle) -> None:
    emu.control.update_account(DEMO_API_KEY, euro_credit_amount=1.0)
    error(client.post("/api/tasking/orders", json=order_body()), 400, 994)
    emu.control.update_account(DEMO_API_KEY, euro_credit_limit=100)
    data(client.post("/api/tasking/orders", json=order_body()))
    assert emu.control.account(DEMO_API_KEY)["EuroCreditAmount"] < 0


def test_list_filters_and_details_get_post(client: httpx.Client, emu: EmulatorHandle) -> None:
    hist = data(client.post("/api/tasking/orders", json=order_body()))
    rec = data(client.post("/api/tasking/orders", json=order_body(From="2025-06-01", To=None)))
    assert rec["To"] is None
    listed = data(client.get("/api/tasking/orders"))["TaskOrders"]
    assert {o["TaskOrderGuid"] for o in listed} == {hist["TaskOrderGuid"], rec["TaskOrderGuid"]}
    only = data(client.get("/api/tasking/orders", params={"recurringOnly": "True"}))["TaskOrders"]
    assert [o["TaskOrderGuid"] for o in only] == [rec["TaskOrderGuid"]]
    assert (
        len(
            data(client.get("/api/tasking/orders", params={"RECURRINGONLY": "false", "getExpired": "TRUE"}))[
                "TaskOrders"
            ]
        )
        == 2
    )
    r = client.get("/api/tasking/orders", params={"recurringOnly": "maybe"})
    assert r.status_code == 400 and "errors" in r.json()
    post = data(
        client.post("/api/tasking/orders/details", json={"guids": [hist["TaskOrderGuid"], rec["TaskOrderGuid"]]})
    )
    get = data(
        client.get(
            "/api/tasking/orders/details", params=[("guids", hist["TaskOrderGuid"]), ("guids", rec["TaskOrderGuid"])]
        )
    )
    assert [o["TaskOrderGuid"] for o in post["TaskOrders"]] == [o["TaskOrderGuid"] for o in get["TaskOrders"]]
    assert "PLACEHOLDER" in post["TaskOrders"][0]["Attribution"]
    error(
        client.post("/api/tasking/orders/details", json={"Guids": ["9b2c8a4e-1111-4222-8333-444455556666"]}), 404, 404
    )
    error(client.get("/api/tasking/orders/details", params={"guids": "9b2c8a4e-1111-4222-8333-444455556666"}), 404, 404)
    error(client.post("/api/tasking/orders/details", json={"Guids": []}), 400, 992)
    # Historical orders expire after their storage window; getExpired brings them back.
    emu.control.set_time(utc(2025, 7, 1, 0, 0, 1))
    listed = data(client.get("/api/tasking/orders"))["TaskOrders"]
    assert [o["TaskOrderGuid"] for o in listed] == [rec["TaskOrderGuid"]]
    assert len(data(client.get("/api/tasking/orders", params={"getExpired": "true"}))["TaskOrders"]) == 2


def test_historical_lifecycle_past_dates(client: httpx.Client, emu: EmulatorHandle) -> None:
    guid = data(client.post("/api/tasking/orders", json=order_body()))["TaskOrderGuid"]
    assert status_of(client, guid) == "Preparing"
    emu.control.advance(minutes=31)
    assert status_of(client, guid) == "Processing"
    emu.control.advance(hours=2)
    assert status_of(client, guid) == "Completed"


def test_historical_lifecycle_future_dates(client: httpx.Client, emu: EmulatorHandle) -> None:
    guid = data(
        client.post(
            "/api/tasking/orders", json=order_body(From="2025-07-01", To="2025-07-31", ReferenceDate="2025-07-01")
        )
    )["TaskOrderGuid"]
    emu.control.advance(hours=1)
    assert status_of(client, guid) == "AwaitingSatelliteProducts"
    emu.control.set_time(utc(2025, 7, 2, 1))  # 2025-07-01 flown over, not produced before 06:00
    assert status_of(client, guid) == "Processing"
    emu.control.set_time(utc(2025, 7, 2, 7))
    assert status_of(client, guid) == "AwaitingSatelliteProducts"
    emu.control.set_time(utc(2025, 8, 1, 7))
    assert status_of(client, guid) == "Completed"


def test_review_accept_and_cancel_in_review_refunds(client: httpx.Client, emu: EmulatorHandle) -> None:
    emu.control.add_account("review-key-invented", auto_accept=False)
    with emu.client(api_key="review-key-invented") as c:
        before = emu.control.account("review-key-invented")["EuroCreditAmount"]
        a = data(c.post("/api/tasking/orders", json=order_body()))
        assert a["OrderingProcessStatus"] == "Review"
        assert emu.control.account("review-key-invented")["EuroCreditAmount"] < before
        canceled = data(c.delete("/api/tasking/orders/cancel", params={"taskOrderGuid": a["TaskOrderGuid"]}))
        assert canceled["OrderingProcessStatus"] == "Canceled"
        assert emu.control.account("review-key-invented")["EuroCreditAmount"] == pytest.approx(before)
        # cancelling again succeeds
        assert (
            data(c.delete("/api/tasking/orders/cancel", params={"taskOrderGuid": a["TaskOrderGuid"]}))[
                "OrderingProcessStatus"
            ]
            == "Canceled"
        )
        b = data(c.post("/api/tasking/orders", json=order_body()))
        emu.control.advance(minutes=61)
        assert status_of(c, b["TaskOrderGuid"]) == "Preparing"
        assert len(emu.control.charges("refund")) == 1
    # other keys do not see the order
    error(client.delete("/api/tasking/orders/cancel", params={"taskOrderGuid": b["TaskOrderGuid"]}), 404, 404)


def test_auto_deny(client: httpx.Client, emu: EmulatorHandle) -> None:
    emu.control.add_account("deny-key-invented", auto_accept=False, auto_deny=True)
    with emu.client(api_key="deny-key-invented") as c:
        o = data(c.post("/api/tasking/orders", json=order_body()))
        assert o["OrderingProcessStatus"] == "Review"
        emu.control.advance(hours=2)
        assert status_of(c, o["TaskOrderGuid"]) == "Denied"
        assert emu.control.account("deny-key-invented")["EuroCreditAmount"] == pytest.approx(10_000.0)


def test_cancel_historical_after_acceptance_is_refused(client: httpx.Client) -> None:
    guid = data(client.post("/api/tasking/orders", json=order_body()))["TaskOrderGuid"]
    body = error(client.delete("/api/tasking/orders/cancel", params={"taskOrderGuid": guid}), 400, 993)
    assert "cannot be cancelled after acceptance" in body["Error"]["Message"]
    error(client.delete("/api/tasking/orders/cancel"), 400, 992)
    error(client.delete("/api/tasking/orders/cancel", params={"taskOrderGuid": "nope"}), 404, 404)


def test_recurring_renewal_and_cancel_before_and_after_cutoff(client: httpx.Client, emu: EmulatorHandle) -> None:
    emu.control.set_time(utc(2026, 6, 15, 10))
    body = order_body(From="2026-06-01", To=None, ReferenceDate="2026-06-01", ImageFrequency=7)
    est = data(client.post("/api/tasking/orders/estimate", json=body))
    assert est["CancellationDate"] == "2026-06-30" and est["NextMonthCost"] > 0
    keep = data(client.post("/api/tasking/orders", json=body))["TaskOrderGuid"]
    stop = data(client.post("/api/tasking/orders", json=body))["TaskOrderGuid"]
    late = data(client.post("/api/tasking/orders", json=body))["TaskOrderGuid"]
    emu.control.advance(hours=3)
    assert status_of(client, keep) == "UpToDate"
    assert data(client.get("/api/account/info"))["NextMonthCosts"] == pytest.approx(3 * est["NextMonthCost"], abs=0.05)
    # Before the cut-off: the next renewal is stopped, the paid month stays.
    emu.control.set_time(utc(2026, 6, 30, 23, 59))
    stopped = data(client.delete("/api/tasking/orders/cancel", params={"taskOrderGuid": stop}))
    # The order stays what was ordered (To null); RenewalStopped is the emulator's invented flag.
    assert stopped["To"] is None and stopped["RenewalStopped"] is True
    assert stopped["OrderingProcessStatus"] == "UpToDate"
    assert emu.control.charges("renewal") == []
    # 00:00 UTC on the 1st: renewals are charged (two orders), not the stopped one.
    emu.control.set_time(utc(2026, 7, 1, 0, 0, 1))
    renewals = emu.control.charges("renewal")
    assert sorted(r["order"] for r in renewals) == sorted([keep, late])
    assert all(r["at"] == "2026-07-01T00:00:00Z" for r in renewals)
    # After the cut-off: July is already paid; the cancel stops the August renewal.
    late_after = data(client.delete("/api/tasking/orders/cancel", params={"taskOrderGuid": late}))
    assert late_after["To"] is None and late_after["RenewalStopped"] is True
    details = data(client.post("/api/tasking/orders/details", json={"Guids": [keep]}))["TaskOrders"][0]
    assert details["ImageDates"][-1] == "2026-07-27" and details["To"] is None
    emu.control.set_time(utc(2026, 8, 1, 0, 0, 1))
    assert sorted(r["order"] for r in emu.control.charges("renewal")) == sorted([keep, late, keep])
    assert status_of(client, stop) == "Completed"
    assert len(data(client.get("/api/tasking/orders", params={"recurringOnly": "true"}))["TaskOrders"]) == 1


def test_renewal_without_credits_stops_the_order(client: httpx.Client, emu: EmulatorHandle) -> None:
    emu.control.set_time(utc(2026, 6, 15, 10))
    guid = data(client.post("/api/tasking/orders", json=order_body(From="2026-06-01", To=None)))["TaskOrderGuid"]
    emu.control.update_account(DEMO_API_KEY, euro_credit_amount=0.0)
    emu.control.set_time(utc(2026, 7, 1, 1))
    o = emu.control.order(guid)
    assert o["To"] is None and o["RenewalStopped"] is True


def test_tile_orders_alias_and_deduplication(client: httpx.Client, emu: EmulatorHandle) -> None:
    tiles = data(client.post("/api/tasking/search/tiles", json={"Wkt": AOI_WKT}))["Tiles"]
    guid = tiles[0]["Guid"]
    minis = data(client.post("/api/tasking/search/tiles", json={"TileGuidForMiniTiles": guid}))["MiniTiles"]
    body = order_body(Wkt=None, Tiles=[guid])
    est = data(client.post("/api/tasking/orders/estimate", json=body))
    assert est["Tiles"] == [guid] and est["MiniTiles"] == []
    poly_rate = est["AreaKm2"] * 0.20
    assert est["CurrentMonthCost"] == pytest.approx(poly_rate * 0.2, rel=1e-3)
    mest = data(client.post("/api/tasking/orders/estimate", json=order_body(Wkt=None, MiniTileGuids=minis[:2])))
    assert mest["CurrentMonthCost"] == pytest.approx(mest["AreaKm2"] * 0.20 * 0.5, abs=0.01)
    first = data(client.post("/api/tasking/orders", json=order_body(Wkt=None, TileGuids=[guid])))
    assert first["Tiles"] == [guid] and first["Wkt"] is None
    bal = emu.control.account(DEMO_API_KEY)["EuroCreditAmount"]
    data(client.post("/api/tasking/orders", json=order_body(Wkt=None, TileGuids=[guid], TileDeduplication=True)))
    assert emu.control.account(DEMO_API_KEY)["EuroCreditAmount"] == pytest.approx(bal)
    data(client.post("/api/tasking/orders", json=order_body(Wkt=None, TileGuids=[guid], TileDeduplication=False)))
    assert emu.control.account(DEMO_API_KEY)["EuroCreditAmount"] < bal - 1


def test_multipolygon_is_one_aoi_polygons_are_separate(client: httpx.Client) -> None:
    a = "((8.6 50.1, 8.603 50.1, 8.603 50.103, 8.6 50.103, 8.6 50.1))"
    b = "((8.7 50.1, 8.703 50.1, 8.703 50.103, 8.7 50.103, 8.7 50.1))"
    pooled = data(
        client.post(
            "/api/tasking/orders/estimate", json=order_body(Wkt=f"GEOMETRYCOLLECTION (MULTIPOLYGON ({a}, {b}))")
        )
    )
    separate = data(
        client.post(
            "/api/tasking/orders/estimate", json=order_body(Wkt=f"GEOMETRYCOLLECTION (POLYGON {a}, POLYGON {b})")
        )
    )
    assert pooled["AreaKm2"] == 0.5 and separate["AreaKm2"] == 1.0
    assert POLY
