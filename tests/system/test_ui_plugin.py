"""The ClearSKY view, served by Airflow's own api-server app with the plugin mounted from its entry point, after
the monthly example ran against the emulator: what it shows, who may see it, and that the key never leaves.

Every URL is asked without a token (401), with a forged one (403), as a viewer (connections: 403) and as an
admin (by header, and by the UI's ``_token`` cookie as an embedded page is).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

import pytest

from .conftest import utc

pytestmark = [pytest.mark.integration, pytest.mark.dag]

DAG_ID = "example_clearsky_monthly_monitoring"
# A weekly order with the default ReferenceDate (2024-01-01, a Monday) has its images on the Mondays of May 2025.
MAY = ["2025-05-05", "2025-05-12", "2025-05-19", "2025-05-26"]


def _plugin_entry_point_installed() -> bool:
    return any(
        ep.value == "airflow_provider_clearsky.plugin:ClearSkyPlugin"
        for ep in importlib.metadata.entry_points(group="airflow.plugins")
    )


@pytest.fixture(scope="module")
def api() -> Any:
    """Airflow's api-server app (core) as ``airflow api-server`` builds it, with tokens for two users."""
    assert _plugin_entry_point_installed(), (
        "the airflow.plugins entry point of airflow-provider-clearsky is not installed: reinstall the package "
        "(make venv, or uv pip install -e .)"
    )
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "clearsky-ui-test-secret-" + "0123456789abcdef" * 4)
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_ISSUER", "clearsky-ui-test")
    monkeypatch.setenv(
        "AIRFLOW__CORE__AUTH_MANAGER", "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
    )
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin,viewer:viewer")
    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    app = create_app("core")
    manager = get_auth_manager()
    tokens = {
        role: manager.generate_jwt(SimpleAuthManagerUser(username=role, role=role)) for role in ("admin", "viewer")
    }
    yield (lambda cookie=None: TestClient(app, cookies={"_token": cookie} if cookie else None)), tokens
    monkeypatch.undo()


def _run_monthly(example: Any, emulator: Any, tmp_path: Path) -> Any:
    control = emulator.control
    control.set_time(utc(2025, 6, 1, 0, 30))
    control.set_speed(3600)
    run = example(DAG_ID).test(logical_date=utc(2025, 6, 1), run_conf={"destination": str(tmp_path)})
    assert run.state == "success"
    return run


def _urls(run_id: str) -> list[str]:
    return [
        "/clearsky/",
        "/clearsky/connections/clearsky_default",
        f"/clearsky/runs/{DAG_ID}/{run_id}",
        f"/clearsky/runs/{DAG_ID}/{run_id}?task_id=download&map_index=0",
        "/clearsky/api/connections",
        "/clearsky/api/connections/clearsky_default",
        f"/clearsky/api/runs/{DAG_ID}/{run_id}",
    ]


def test_the_view_shows_the_order_its_cost_and_files_and_only_to_whom_may_see_them(
    api: Any, example: Any, emulator: Any, tmp_path: Path
) -> None:
    from airflow_provider_clearsky.emulator.config import DEMO_API_KEY
    from airflow_provider_clearsky.plugin import data

    make_client, tokens = api
    client, browser = make_client(), make_client(tokens["admin"])  # browser: the UI's cookie, as in an iframe
    run = _run_monthly(example, emulator, tmp_path)
    control = emulator.control
    [order] = control.orders()
    guid = order["TaskOrderGuid"]
    paid = sum(c["eur"] for c in control.charges() if c["kind"] == "order")
    key = emulator.connection_dict()["password"]
    assert key  # the key the connection holds, which no answer may contain
    data.CACHE.clear()

    # Nobody without a valid token sees anything.
    for url in _urls(run.run_id):
        assert client.get(url).status_code == 401, url
        assert client.get(url, headers={"Authorization": "Bearer forged.token.value"}).status_code == 403, url
        assert make_client("forged").get(url).status_code == 403, url

    # A viewer may read the DAG's runs but not the connection's account and orders.
    viewer = {"Authorization": f"Bearer {tokens['viewer']}"}
    assert client.get("/clearsky/api/connections/clearsky_default", headers=viewer).status_code == 403
    assert client.get("/clearsky/connections/clearsky_default", headers=viewer).status_code == 403
    assert client.get("/clearsky/api/connections", headers=viewer).json()["connections"] == []
    assert client.get(f"/clearsky/api/runs/{DAG_ID}/{run.run_id}", headers=viewer).status_code == 200

    # The admin sees the account, the order live from the API, what the run did with it, and the spend.
    before = len(control.request_log())
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    answer = client.get("/clearsky/api/connections/clearsky_default", headers=admin)
    assert answer.status_code == 200, answer.text
    view = answer.json()
    assert view["errors"] == {}
    assert view["account"]["MaxConcurrentConnections"] is not None
    [shown] = [o for o in view["orders"] if o["order_guid"] == guid]
    assert shown["status"] == order["OrderingProcessStatus"] and shown["recurring"] is True
    assert shown["cost"] == pytest.approx(paid, abs=0.005)
    assert [f["date"] for f in sorted(shown["files"], key=lambda f: f["date"])] == MAY
    assert all(f["size"] > 0 and f["run_id"] == run.run_id for f in shown["files"])
    assert {r["action"] for r in shown["runs"]} >= {"created"}
    assert shown["cancel_cutoff"].startswith("2025-07-01") or shown["cancel_cutoff"] > "2025"
    # The session's metadata database may hold earlier runs of the same example (other tests ran it): the
    # DAG's spend is this run's cost plus whole multiples of earlier identical orders, never less.
    spent = view["spend"]["by_dag"][DAG_ID]
    assert spent >= paid - 0.005 and spent / paid == pytest.approx(round(spent / paid), abs=0.01)
    # One request per endpoint per page view; the next views within the cache time ask nothing.
    asked = [r["path"] for r in control.request_log()[before:]]
    assert asked.count("/api/tasking/orders") == 1, asked
    assert sum(1 for p in asked if p in ("/api/account/info", "/api/apikey/info")) == 1, asked
    browser.get("/clearsky/")
    assert len(control.request_log()) == before + len(asked)

    # The run's tab: its order, cost, the dates waited for and the files written.
    tab = client.get(f"/clearsky/api/runs/{DAG_ID}/{run.run_id}", headers=admin).json()
    assert [o["order_guid"] for o in tab["orders"]] == [guid]
    assert tab["cost"] == pytest.approx(paid, abs=0.005) and tab["dates"] == MAY and tab["file_count"] == len(MAY)
    one = client.get(f"/clearsky/api/runs/{DAG_ID}/{run.run_id}?task_id=download&map_index=0", headers=admin).json()
    assert one["file_count"] == 1

    # Pages, by the UI's cookie as an embedded page gets it; the key is in no answer.
    for url in _urls(run.run_id):
        page = browser.get(url)
        assert page.status_code == 200, (url, page.text)
        assert key not in page.text and DEMO_API_KEY not in page.text, url
    html = browser.get("/clearsky/").text
    assert guid in html and f"{paid:,.2f}" in html
