"""The emulator's stand-in for the ClearSKY dashboard: one HTML page per order.

``GET /_emulator/dashboard/orders/{guid}`` is where the "ClearSKY order" extra link points when a connection's
base URL is the emulator (loopback), so the demo's link opens a page a person can read. It is an admin route
(served only with ``--admin``, like every ``/_emulator`` path) and shows what the emulator knows of the order;
the real dashboard's layout is not imitated (docs/emulator.md: invented).
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from fastapi.responses import HTMLResponse

from .errors import not_found

if TYPE_CHECKING:
    from fastapi import FastAPI

    from .control import Control

# The order's fields in the page, in this order; the API key (redacted by Control anyway) is never shown.
_FIELDS = (
    "TaskOrderGuid",
    "OrderingProcessStatus",
    "Model",
    "From",
    "To",
    "ImageFrequency",
    "ReferenceDate",
    "SatelliteConstellations",
    "TaskOrderAreaKm2",
    "StorageMonths",
    "ChargedEur",
    "CreatedDate",
)


def order_page(order: dict[str, Any]) -> str:
    """The order as a small HTML table."""
    rows = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{html.escape(_text(order.get(name)))}</td></tr>"
        for name in _FIELDS
        if name in order
    )
    guid = html.escape(str(order.get("TaskOrderGuid", "")))
    kind = "recurring" if order.get("To") is None else "historical"
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Order {guid} - ClearSKY emulator</title>"
        "<style>body{font-family:sans-serif;margin:2em}th{text-align:left;padding-right:1em}"
        "td,th{border-bottom:1px solid #ddd;padding:.3em}</style></head><body>"
        f"<h1>Order {guid}</h1><p>ClearSKY emulator ({kind} order). Not the real ClearSKY dashboard.</p>"
        f"<table>{rows}</table></body></html>"
    )


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)


def add_dashboard_routes(app: FastAPI, control: Control) -> None:
    @app.get("/_emulator/dashboard/orders/{guid}", response_class=HTMLResponse)
    async def dashboard_order(guid: str) -> HTMLResponse:
        try:
            order = control.order(guid)
        except KeyError:
            raise not_found(f"Unknown order '{guid}'.") from None
        return HTMLResponse(order_page(order))
