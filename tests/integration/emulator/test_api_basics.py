"""Auth, routing, casing, envelopes and the account/catalogue endpoints."""

from __future__ import annotations

import httpx

from airflow_provider_clearsky.emulator import DEMO_API_KEY
from airflow_provider_clearsky.emulator.handle import EmulatorHandle

from .conftest import data, error, order_body


def test_401_without_or_with_unknown_key(emu: EmulatorHandle) -> None:
    r = httpx.get(emu.url + "/api/tasking/models")
    error(r, 401, 401)
    r = httpx.get(emu.url + "/api/tasking/models", headers={"x-api-key": "nope"})
    error(r, 401, 401)
    r = httpx.get(emu.url + "/api/tasking/models", headers={"X-API-KEY": DEMO_API_KEY})
    data(r)
    r = httpx.get(emu.url + "/api/tasking/models", headers={"Authorization": f"Bearer {DEMO_API_KEY}"})
    data(r)


def test_account_info_both_paths_union_of_fields(client: httpx.Client) -> None:
    a = data(client.get("/api/account/info"))
    b = data(client.get("/api/apikey/info"))
    assert a == b
    for f in [
        "Key",
        "CreditAmount",
        "EuroCreditAmount",
        "CreditLimit",
        "EuroCreditLimit",
        "ContactInfo",
        "Email",
        "MaxConcurrentConnections",
        "MaxCompositeAreaKm2",
        "MaxTotalBands",
        "CurrentMonthCosts",
        "NextMonthCosts",
        "TenantId",
        "EuroOverdraftLimit",
        "EuroBalanceCap",
    ]:
        assert f in a
    assert a["MaxConcurrentConnections"] == 4


def test_routes_are_case_insensitive_and_trailing_slash(client: httpx.Client) -> None:
    data(client.get("/API/Tasking/Models/"))
    data(client.get("/api/SatelliteImages/../tasking/models".replace("SatelliteImages/../", "")))
    data(client.get("/Api/ApiKey/Info"))


def test_models_catalogue(client: httpx.Client) -> None:
    models = {m["Model"]: m for m in data(client.get("/api/tasking/models"))["TaskingModels"]}
    assert {"Stratus2", "Stratus3", "Stratus2Fast", "NimbusNDVI"} <= set(models)
    req = {s["SatelliteConstellation"]: s["Optional"] for s in models["Stratus2"]["SupportedSatelliteConstellations"]}
    assert req == {"Sentinel1": False, "Sentinel2": False, "Landsat89": False}
    fast = {
        s["SatelliteConstellation"]: s["Optional"] for s in models["Stratus2Fast"]["SupportedSatelliteConstellations"]
    }
    assert fast == {"Sentinel1": False, "Sentinel2": False, "Landsat89": True}


def test_input_keys_in_any_casing(client: httpx.Client) -> None:
    body = {k.lower(): v for k, v in order_body().items()}
    body["MODEL"] = body.pop("model").lower()
    est = data(client.post("/api/tasking/orders/estimate", json=body))
    assert est["Model"] == "Stratus2"
    camel = {k[0].lower() + k[1:]: v for k, v in order_body().items()}
    assert data(client.post("/api/tasking/orders/estimate", json=camel))["AreaKm2"] == est["AreaKm2"]


def test_problem_details_for_unparsable_json_and_wrong_types(client: httpx.Client) -> None:
    r = client.post("/api/tasking/orders/estimate", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    pd = r.json()
    assert pd["status"] == 400 and pd["title"] and "$" in pd["errors"] and pd["traceId"]
    r = client.post("/api/tasking/orders/estimate", json=order_body(ImageFrequency="seven"))
    assert r.status_code == 400 and "$.ImageFrequency" in r.json()["errors"]
    r = client.post("/api/tasking/orders/estimate", json=order_body(From="June"))
    assert r.status_code == 400 and "$.From" in r.json()["errors"]
    r = client.post("/api/tasking/orders/estimate", content=b"")
    assert r.status_code == 400 and "errors" in r.json()
    r = client.post("/api/tasking/orders/estimate", json=[1, 2])
    assert r.status_code == 400 and "errors" in r.json()


def test_unknown_route_is_404_service_result(client: httpx.Client) -> None:
    error(client.get("/api/nothing/here"), 404, 404)


def test_legacy_order_path_aliases(client: httpx.Client, emu: EmulatorHandle) -> None:
    est = data(client.post("/api/satelliteimages/process/tasking/orders/estimate", json=order_body()))
    assert est["AreaKm2"] > 0
    order = data(client.post("/api/SatelliteImages/Process/Tasking/Orders", json=order_body()))
    assert emu.control.order_count() == 1 and order["TaskOrderGuid"]


def test_request_log_redacts_key(client: httpx.Client, emu: EmulatorHandle) -> None:
    client.get("/api/tasking/models")
    client.get("/api/tasking/orders", params={"recurringOnly": "True", "UploadUrl": "https://secret.example/x?sig=1"})
    log = emu.control.request_log()
    assert emu.control.request_count("/API/tasking/models") == 1
    assert emu.control.request_count(method="GET", status=200) == 2
    text = repr(log)
    assert DEMO_API_KEY not in text and "secret.example" not in text
    assert log[-1]["query"].startswith("recurringOnly=True&UploadUrl=REDACTED")
