"""The clearsky connection: settings read from it, refusals, and test_connection()."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from airflow_provider_clearsky.connection import ConnectionSettings
from airflow_provider_clearsky.exceptions import InvalidRequestError
from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook
from tests.conftest import FAKE_API_KEY
from tests.unit.hook_support import envelope, scripted_hook


class Conn:
    def __init__(self, host=None, password=FAKE_API_KEY, port=None, extra=None):
        self.conn_id, self.host, self.password, self.port = "c", host, password, port
        self.extra_dejson = extra or {}


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        (None, None, "https://api.clearsky.vision"),
        ("api.clearsky.vision", None, "https://api.clearsky.vision"),
        ("https://api.clearsky.vision/", None, "https://api.clearsky.vision"),
        ("http://127.0.0.1:8089", None, "http://127.0.0.1:8089"),
        ("http://localhost", 8089, "http://localhost:8089"),
        ("http://[::1]:8089", None, "http://[::1]:8089"),
    ],
)
def test_base_url_from_host_and_port(host, port, expected):
    assert ConnectionSettings.from_connection(Conn(host=host, port=port)).base_url == expected


@pytest.mark.parametrize("host", ["http://api.clearsky.vision", "http://10.0.0.5:8089", "ftp://x"])
def test_plain_http_off_loopback_is_refused(host):
    with pytest.raises(InvalidRequestError) as raised:
        ConnectionSettings.from_connection(Conn(host=host))
    assert "host" in raised.value.field_errors


def test_missing_key_is_refused_naming_the_field():
    with pytest.raises(InvalidRequestError) as raised:
        ConnectionSettings.from_connection(Conn(password=""))
    assert "password" in raised.value.field_errors


def test_extra_options_are_read_and_checked():
    settings = ConnectionSettings.from_connection(
        Conn(extra={"timeout": "30", "max_retries": 2, "max_concurrent_connections": 3})
    )
    assert (settings.timeout, settings.max_retries, settings.max_concurrent_connections) == (30.0, 2, 3)
    assert FAKE_API_KEY not in repr(settings)
    with pytest.raises(InvalidRequestError, match="bad extra option") as raised:
        ConnectionSettings.from_connection(Conn(extra={"max_concurrent_connections": 0}))
    assert "extra.max_concurrent_connections" in raised.value.field_errors


def test_hook_uses_extra_for_timeouts_retries_and_connection_limit(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_CLEARSKY_DEFAULT",
        json.dumps(
            {
                "conn_type": "clearsky",
                "host": "http://127.0.0.1:9",
                "password": FAKE_API_KEY,
                "extra": {"timeout": 12, "connect_timeout": 3, "max_retries": 2, "max_concurrent_connections": 2},
            }
        ),
    )
    hook = ClearSkyHook()
    assert hook.retry_policy.max_attempts == 3
    assert hook.client.timeout == httpx.Timeout(12, connect=3)
    pool = hook.client._transport._pool  # type: ignore[attr-defined]
    assert pool._max_connections == 2


def test_test_connection_reports_success(clearsky_connection):
    hook, script, _ = scripted_hook(envelope({"MaxConcurrentConnections": 4}))
    ok, message = hook.test_connection()
    assert ok and "Connected" in message and FAKE_API_KEY not in message
    assert [r.method for r in script.requests] == ["GET"]


def test_test_connection_reports_failure_without_raising_or_echoing_the_key(clearsky_connection, caplog):
    caplog.set_level(logging.DEBUG)
    hook, _, _ = scripted_hook(
        httpx.Response(401, json={"Succeeded": False, "Error": {"Message": "API Key is Unauthorized", "Code": 401}})
    )
    ok, message = hook.test_connection()
    assert not ok and "Unauthorized" in message
    assert FAKE_API_KEY not in message and FAKE_API_KEY not in caplog.text


def test_test_connection_to_nothing_fails_cleanly(clearsky_connection):
    ok, message = ClearSkyHook(max_retries=0).test_connection()
    assert not ok and "ConnectError" in message


def test_key_is_registered_with_the_secrets_masker(clearsky_connection, monkeypatch):
    import airflow_provider_clearsky.hooks.clearsky as module

    masked: list[str] = []
    monkeypatch.setattr(module, "mask_secret", masked.append)
    ClearSkyHook().settings  # noqa: B018 - reading the settings registers the key
    assert masked == [FAKE_API_KEY]
