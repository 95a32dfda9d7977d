"""Configuration of the ClearSKY emulator: accounts, lifecycle durations and start-up options.

Everything here is plain dataclasses so that the package stays light to import.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

GEOMETRY_ECHOES = ("exact", "bbox")
DETAILS_METHODS = ("both", "post", "get")

#: The documented demo key. It is invented for the emulator and is not a real ClearSKY key.
DEMO_API_KEY = "clearsky-demo-key"

#: Text of the emulator's invented attribution notice. The docs (docs/api.md#attribution) name no field for the
#: source-attribution notice, so the emulator emits ``Attribution`` and says loudly that it is a placeholder.
ATTRIBUTION_PLACEHOLDER = (
    "EMULATOR PLACEHOLDER - not a real notice: contains modified Copernicus Sentinel data and "
    "Landsat data courtesy of the U.S. Geological Survey (invented text; field name invented by the "
    "clearsky-emulator)."
)


@dataclass
class AccountConfig:
    """One API key and its account limits and balances (values as served by ``/api/apikey/info``)."""

    key: str
    tenant_id: str = ""
    email: str | None = "demo@example.invalid"
    contact_info: str = "ClearSKY emulator account"
    #: Order credits (EUR) balance and the pay-in-arrears limit (how far the balance may go below zero).
    euro_credit_amount: float = 10_000.0
    euro_credit_limit: int = 0
    #: Processing units ("download credits") balance and its overdraft limit.
    credit_amount: float = 10_000.0
    credit_limit: int = 0
    max_concurrent_connections: int = 4
    max_composite_area_km2: int = 10_000
    max_total_bands: int = 12
    euro_balance_cap: int = 100_000
    #: True: orders skip ``Review`` (accepted at creation). False: orders wait in ``Review`` for
    #: ``LifecycleDurations.review`` and are then accepted (or denied when ``auto_deny``).
    auto_accept: bool = True
    #: Deny every order after review. The status string ``Denied`` is INVENTED (the docs have none).
    auto_deny: bool = False

    def __post_init__(self) -> None:
        if not self.tenant_id:
            import uuid

            self.tenant_id = str(uuid.uuid5(uuid.NAMESPACE_URL, "clearsky-emulator-tenant:" + self.key))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class LifecycleDurations:
    """Emulated durations that drive the order state machine and image availability.

    * ``review``: time an order spends in ``Review`` on accounts without automatic acceptance.
    * ``preparing``: time in ``Preparing`` after acceptance.
    * ``processing``: minimum time after ``Preparing`` before any (back-filled) image date is produced.
    * ``production_delay``: an image date ``d`` is produced at ``d + 1 day + production_delay`` (UTC) at the
      earliest (the satellites must have flown over first).
    """

    review: timedelta = timedelta(hours=1)
    preparing: timedelta = timedelta(minutes=30)
    processing: timedelta = timedelta(hours=2)
    production_delay: timedelta = timedelta(hours=6)


@dataclass
class EmulatorConfig:
    """Start-up options of one emulator instance (the CLI and the pytest fixture build one)."""

    host: str = "127.0.0.1"
    port: int = 8089
    accounts: list[AccountConfig] = field(default_factory=lambda: [AccountConfig(DEMO_API_KEY)])
    admin: bool = False
    #: Token required in ``x-admin-token`` by the admin endpoints. ``None``: loopback clients only.
    admin_token: str | None = None
    clock_speed: float = 1.0
    start_time: datetime | None = None
    state_file: str | None = None
    #: Fault specs (see ``faults.parse_fault_spec``) armed at start.
    faults: list[str] = field(default_factory=list)
    #: How concurrency overflow is reported: 429, or 1003 (HTTP 400 with ``Error.Code`` 1003).
    concurrency_error: int = 429
    #: Add ``Retry-After`` (seconds) to concurrency-limit 429 answers; ``None``: no header (no source
    #: documents one).
    concurrency_retry_after: int | None = None
    accept_bearer: bool = True
    #: How order answers echo a polygon order's area: ``exact`` (as sent) or ``bbox`` (each polygon's
    #: bounding box, as the docs bill it). The real service's echo is not documented; ``bbox`` keeps the
    #: provider from relying on an exact echo.
    order_geometry_echo: str = "exact"
    #: Which methods serve ``/api/tasking/orders/details``: ``both``, ``post`` (the 2025 client) or ``get``
    #: (the docs); the other answers 405.
    order_details_methods: str = "both"
    durations: LifecycleDurations = field(default_factory=LifecycleDurations)
    access_log: bool = True
    #: PEM certificate (chain) and private key: serve HTTPS, as the real API does. ``None``: plain HTTP.
    tls_certfile: str | None = None
    tls_keyfile: str | None = None

    def __post_init__(self) -> None:
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ValueError("HTTPS needs both a certificate and its key (--tls-cert and --tls-key), or neither")
        if self.tls_certfile is not None:
            _check_certificate(self.tls_certfile, self.tls_keyfile)
        if self.order_geometry_echo not in GEOMETRY_ECHOES:
            raise ValueError(f"order_geometry_echo must be one of {', '.join(GEOMETRY_ECHOES)}")
        if self.order_details_methods not in DETAILS_METHODS:
            raise ValueError(f"order_details_methods must be one of {', '.join(DETAILS_METHODS)}")


def _check_certificate(certfile: str, keyfile: str | None) -> None:
    """Fail early, naming the files, when the certificate and key cannot serve HTTPS."""
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile)
    except OSError as error:  # missing file, not PEM, key not matching the certificate (ssl.SSLError)
        raise ValueError(f"cannot serve HTTPS with --tls-cert {certfile} and --tls-key {keyfile}: {error}") from None
