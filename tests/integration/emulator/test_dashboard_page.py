"""The emulator's order page: where the "ClearSKY order" link of a loopback connection points."""

from __future__ import annotations

import httpx

from airflow_provider_clearsky.emulator.handle import EmulatorHandle

from .conftest import data, order_body


def test_the_order_link_of_a_loopback_connection_opens_an_html_page_of_the_order(
    client: httpx.Client, emu: EmulatorHandle
) -> None:
    guid = data(client.post("/api/tasking/orders", json=order_body()))["TaskOrderGuid"]
    page = httpx.get(f"{emu.url}/_emulator/dashboard/orders/{guid.upper()}", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert guid in page.text and "historical" in page.text and "Stratus2" in page.text
    assert emu.api_key not in page.text
    missing = httpx.get(f"{emu.url}/_emulator/dashboard/orders/00000000-0000-0000-0000-000000000000", timeout=10)
    assert missing.status_code == 404
