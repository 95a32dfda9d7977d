"""The ``clearsky`` connection: what its fields mean, and the settings read from it.

API key in ``password``, base URL in ``host``, options in ``extra``. A plain ``http://`` base URL is refused
unless the host is loopback (the emulator), so the key never crosses a network unencrypted.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from airflow_provider_clearsky.exceptions import InvalidRequestError

DEFAULT_CONN_ID = "clearsky_default"
DEFAULT_BASE_URL = "https://api.clearsky.vision"
DEFAULT_DASHBOARD_URL = "https://dashboard.clearsky.vision"

# The hook's form description (``get_ui_field_behaviour``); provider info spells the first key "hidden-fields".
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden_fields": ["schema", "login", "port"],
    "relabeling": {"password": "API Key", "host": "Base URL"},
    "placeholders": {
        "host": DEFAULT_BASE_URL,
        "password": "your ClearSKY API key",
        "extra": json.dumps(
            {"timeout": 120, "max_retries": 5, "max_concurrent_connections": 2}, separators=(", ", ": ")
        ),
    },
}

# extra key -> (type, default, lowest allowed value)
_EXTRA_OPTIONS: dict[str, tuple[type, float, float]] = {
    "timeout": (float, 120.0, 0.1),
    "connect_timeout": (float, 10.0, 0.1),
    "max_retries": (int, 5, 0),
    "max_concurrent_connections": (int, 4, 1),
    "backoff_initial": (float, 1.0, 0.0),
    "backoff_max": (float, 60.0, 0.0),
    "retry_after_cap": (float, 300.0, 0.0),
}

# The form's typed fields for the extra options: label and help text.
_FIELD_TEXT: dict[str, tuple[str, str]] = {
    "timeout": ("Read timeout (s)", "Seconds to wait for an answer; downloads of large composites take long."),
    "connect_timeout": ("Connect timeout (s)", "Seconds to wait for the connection to the API."),
    "max_retries": ("Max retries", "Retries after the first attempt on 429, 5xx, timeouts (a paid call never)."),
    "max_concurrent_connections": (
        "Max concurrent connections",
        "The hook never opens more; set it to your account's MaxConcurrentConnections.",
    ),
    "backoff_initial": ("Backoff initial (s)", "First wait between retries; doubles up to the maximum, with jitter."),
    "backoff_max": ("Backoff max (s)", "Longest wait between retries."),
    "retry_after_cap": ("Retry-After cap (s)", "Longest Retry-After the hook honours before giving up."),
}
DASHBOARD_HELP = (
    "Where the ClearSKY order links point. Empty: the ClearSKY dashboard, or the emulator's own order pages when "
    "the base URL is loopback."
)
EXTRA_PREFIX = "extra__clearsky__"  # how older Airflow forms stored the typed fields


def conn_fields() -> dict[str, Any]:
    """The typed connection-form fields, as provider info ``conn-fields`` (read by Airflow 3.2+)."""
    fields: dict[str, Any] = {}
    for name, (kind, default, lowest) in _EXTRA_OPTIONS.items():
        label, help_text = _FIELD_TEXT[name]
        number = "integer" if kind is int else "number"
        fields[name] = {
            "label": label,
            "description": help_text,
            "schema": {"type": [number, "null"], "default": kind(default), "minimum": kind(lowest)},
        }
    fields["dashboard_url"] = {
        "label": "Dashboard URL",
        "description": DASHBOARD_HELP,
        "schema": {"type": ["string", "null"]},
    }
    return fields


class ConnectionLike(Protocol):
    @property
    def conn_id(self) -> str | None: ...
    @property
    def host(self) -> str | None: ...
    @property
    def port(self) -> int | None: ...
    @property
    def password(self) -> str | None: ...
    @property
    def extra_dejson(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ConnectionSettings:
    """Everything the hook needs from a connection, validated once."""

    base_url: str
    api_key: str = field(repr=False)
    timeout: float = 120.0
    connect_timeout: float = 10.0
    max_retries: int = 5
    max_concurrent_connections: int = 4
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    retry_after_cap: float = 300.0
    dashboard_url: str = DEFAULT_DASHBOARD_URL

    @classmethod
    def from_connection(cls, conn: ConnectionLike) -> ConnectionSettings:
        conn_id = conn.conn_id or "(unnamed)"
        api_key = (conn.password or "").strip()
        if not api_key:
            raise InvalidRequestError(
                f"connection {conn_id!r} has no API key",
                field_errors={"password": ["put the ClearSKY API key in the connection's password field"]},
            )
        if not all(" " <= char <= "~" for char in api_key):
            # Said without the key: a key that cannot be sent as a header would otherwise show up escaped
            # (b'...\\n...') in error texts, where the secrets masker does not recognise it.
            raise InvalidRequestError(
                f"connection {conn_id!r} has an API key that cannot be sent in an HTTP header",
                field_errors={
                    "password": [
                        "the API key contains a line break, a control character or a non-ASCII character; paste "
                        "the key again exactly as the ClearSKY dashboard shows it"
                    ]
                },
            )
        extra = _unprefixed(conn.extra_dejson or {})
        options = {name: _option(conn_id, name, extra.get(name), *spec) for name, spec in _EXTRA_OPTIONS.items()}
        base_url = base_url_of(conn_id, conn.host, conn.port)
        dashboard = str(extra.get("dashboard_url") or default_dashboard_url(base_url)).rstrip("/")
        return cls(
            base_url=base_url,
            api_key=api_key,
            dashboard_url=dashboard,
            **options,
        )

    def order_url(self, order_guid: str) -> str:
        """Where a person sees an order in the ClearSKY dashboard."""
        return f"{self.dashboard_url}/orders/{order_guid}"


def form_widgets() -> dict[str, Any]:
    """The same fields as wtforms widgets, for Airflow before 3.2 (read only where Flask-AppBuilder is installed).

    Airflow accepts only integer, string, password and boolean fields there: seconds are strings, converted
    and checked when the connection is used.
    """
    from wtforms import IntegerField, StringField
    from wtforms.validators import NumberRange, Optional

    try:
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget

        widget: dict[str, Any] = {"widget": BS3TextFieldWidget()}
    except ImportError:
        widget = {}
    widgets: dict[str, Any] = {}
    for name, (kind, default, lowest) in _EXTRA_OPTIONS.items():
        label, help_text = _FIELD_TEXT[name]
        if kind is int:
            checks = [Optional(), NumberRange(min=lowest)]
            field = IntegerField(label, validators=checks, default=int(default), description=help_text, **widget)
        else:
            field = StringField(label, validators=[Optional()], default=f"{default:g}", description=help_text, **widget)
        widgets[f"{EXTRA_PREFIX}{name}"] = field
    widgets[f"{EXTRA_PREFIX}dashboard_url"] = StringField("Dashboard URL", description=DASHBOARD_HELP, **widget)
    return widgets


def _unprefixed(extra: dict[str, Any]) -> dict[str, Any]:
    """The options, whether stored plainly or by a form under ``extra__clearsky__<name>`` (plain wins)."""
    options = {key[len(EXTRA_PREFIX) :]: value for key, value in extra.items() if key.startswith(EXTRA_PREFIX)}
    options.update({key: value for key, value in extra.items() if not key.startswith(EXTRA_PREFIX)})
    return options


def default_dashboard_url(base_url: str) -> str:
    """The real dashboard; for a loopback base URL (the emulator) the emulator's own order pages."""
    if is_loopback(urlsplit(base_url).hostname or ""):
        return f"{base_url}/_emulator/dashboard"
    return DEFAULT_DASHBOARD_URL


def _option(conn_id: str, name: str, value: Any, kind: type, default: float, lowest: float) -> Any:
    if value is None or value == "":
        return kind(default)
    try:
        number = kind(value)
    except (TypeError, ValueError):
        number = None
    if number is None or isinstance(value, bool) or number < lowest:
        raise InvalidRequestError(
            f"connection {conn_id!r} has a bad extra option",
            field_errors={f"extra.{name}": [f"must be a {kind.__name__} of at least {lowest:g}, got {value!r}"]},
        )
    return number


def is_loopback(hostname: str) -> bool:
    if hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def base_url_of(conn_id: str, host: str | None, port: int | None) -> str:
    """The API's base URL from the connection's host (with or without scheme) and port."""
    text = (host or "").strip().rstrip("/") or DEFAULT_BASE_URL
    if "://" not in text:
        text = f"https://{text}"
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequestError(
            f"connection {conn_id!r} has a bad base URL",
            field_errors={"host": [f"must look like {DEFAULT_BASE_URL}"]},
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise InvalidRequestError(
            f"connection {conn_id!r} would send the API key unencrypted",
            field_errors={"host": ["use https:// (plain http:// is allowed only for 127.0.0.1/localhost)"]},
        )
    netloc = parts.netloc
    if port and parts.port is None:
        netloc = f"{netloc}:{port}"
    return f"{parts.scheme}://{netloc}{parts.path}"
