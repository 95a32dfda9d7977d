"""``ClearSkyHook.get_conn()``: Airflow's hook convention, returning the configured ``httpx.Client``."""

from __future__ import annotations

import httpx

from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook
from tests.conftest import FAKE_API_KEY


def test_get_conn_returns_the_configured_client(clearsky_connection: str) -> None:
    hook = ClearSkyHook(clearsky_connection)
    client = hook.get_conn()
    assert isinstance(client, httpx.Client)
    assert client is hook.get_conn() is hook.client  # one client per hook
    assert str(client.base_url).startswith("http://127.0.0.1:9")
    assert client.headers["x-api-key"] == FAKE_API_KEY
    hook.close()
    assert client.is_closed
    assert hook.get_conn() is not client  # a closed hook opens a fresh client on the next use
    hook.close()
