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
from tests.support.hook_support import envelope, scripted_hook


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


def test_order_links_open_the_emulator_pages_for_a_loopback_base_url_and_the_dashboard_otherwise():
    local = ConnectionSettings.from_connection(Conn(host="http://127.0.0.1:8089"))
    assert local.order_url("abc") == "http://127.0.0.1:8089/_emulator/dashboard/orders/abc"
    remote = ConnectionSettings.from_connection(Conn(host="https://api.clearsky.vision"))
    assert remote.order_url("abc") == "https://dashboard.clearsky.vision/orders/abc"
    chosen = ConnectionSettings.from_connection(Conn(host="http://127.0.0.1:1", extra={"dashboard_url": "https://d/"}))
    assert chosen.order_url("abc") == "https://d/orders/abc"


def test_options_saved_by_a_form_under_prefixed_names_are_read():
    settings = ConnectionSettings.from_connection(
        Conn(extra={"extra__clearsky__timeout": "30", "extra__clearsky__max_retries": 2, "max_retries": 3})
    )
    assert (settings.timeout, settings.max_retries) == (30.0, 3)  # the plain name wins


def test_connection_form_has_typed_option_fields_with_defaults_and_help():
    from airflow_provider_clearsky import get_provider_info
    from airflow_provider_clearsky.connection import _EXTRA_OPTIONS

    fields = get_provider_info()["connection-types"][0]["conn-fields"]
    assert set(fields) == {*_EXTRA_OPTIONS, "dashboard_url"}
    assert fields["max_concurrent_connections"]["schema"] == {"type": ["integer", "null"], "default": 4, "minimum": 1}
    assert fields["timeout"]["schema"]["default"] == 120.0 and fields["timeout"]["schema"]["type"][0] == "number"
    assert all(field["label"] and field["description"] for field in fields.values())
    for name, field in fields.items():  # every default is accepted as the option's value
        if "default" in field["schema"]:
            settings = ConnectionSettings.from_connection(Conn(extra={name: field["schema"]["default"]}))
            assert getattr(settings, name) == field["schema"]["default"]


def test_airflow_reads_the_typed_fields_into_its_connection_form():
    from airflow.providers_manager import ProvidersManager

    widgets = ProvidersManager().connection_form_widgets
    if "extra__clearsky__timeout" not in widgets:
        pytest.skip("before Airflow 3.2 the form fields come from the hook's widgets, which need Flask-AppBuilder")
    assert widgets["extra__clearsky__max_retries"].field["value"] == 5
    assert "MaxConcurrentConnections" in widgets["extra__clearsky__max_concurrent_connections"].field["description"]


def test_form_widgets_for_airflow_before_3_2():
    pytest.importorskip("wtforms", reason="wtforms comes with Flask-AppBuilder, which Airflow 3 does not install")
    widgets = ClearSkyHook.get_connection_form_widgets()
    assert set(widgets) == {
        f"extra__clearsky__{name}"
        for name in (
            "timeout",
            "connect_timeout",
            "max_retries",
            "max_concurrent_connections",
            "backoff_initial",
            "backoff_max",
            "retry_after_cap",
            "dashboard_url",
        )
    }
