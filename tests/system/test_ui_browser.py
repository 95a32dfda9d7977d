"""The ClearSKY view in a real browser: ``make airflow``'s standalone Airflow with the emulator, the monthly example
run through the REST API, then headless Chromium (Debian's ``chromium``) on the ClearSKY page and the run's tab.

Screenshots go to the test's temporary folder (and to ``$CLEARSKY_SCREENSHOT_DIR`` when set: that is how the
README's screenshot is made). What the pages must show is read from the DOM; the key must be in no page and in
no answer the browser received.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_clearsky._compat import airflow_version

from .test_standalone_e2e import Demo

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DAG_ID = "example_clearsky_monthly_monitoring"
RUN_ID = "browser_e2e"


def _playwright_missing() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return True
    return False


pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.timeout(900),
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Chromium is absent (/usr/bin/chromium): apt-get install -y chromium"
    ),
    pytest.mark.skipif(_playwright_missing(), reason="the playwright package is absent (the test extra installs it)"),
    pytest.mark.skipif(
        airflow_version().startswith("3.0."),
        reason="drives the ClearSKY item and run tab of Airflow 3.1+'s UI (/plugin/clearsky, .../plugin/clearsky_run), "
        "which 3.0 does not have; the view's pages on 3.0 are tested in test_ui_plugin.py",
    ),
]


def _run_monthly(url: str, token: str, destination: Path) -> None:
    api = httpx.Client(base_url=f"{url}/api/v2", timeout=30, headers={"Authorization": f"Bearer {token}"})
    # As the scheduler's run would: the DAG fetches the month before the run (as test_standalone_e2e.py does).
    body = {"dag_run_id": RUN_ID, "logical_date": None, "conf": {"destination": str(destination)}}
    deadline = time.monotonic() + 60
    while (answer := api.post(f"/dags/{DAG_ID}/dagRuns", json=body)).status_code == 404:
        assert time.monotonic() < deadline, "the DAG processor did not register the example"
        time.sleep(1)
    assert answer.status_code == 200, answer.text
    assert api.patch(f"/dags/{DAG_ID}", json={"is_paused": False}).status_code == 200
    deadline = time.monotonic() + 240
    state = "queued"
    while state not in ("success", "failed"):
        assert time.monotonic() < deadline, f"the run is still {state}"
        time.sleep(2)
        try:  # a busy machine's SQLite-backed api-server may be slow to answer one poll
            state = api.get(f"/dags/{DAG_ID}/dagRuns/{RUN_ID}").json()["state"]
        except httpx.TimeoutException:
            continue
    assert state == "success"


def _save(page: Any, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    if target := os.environ.get("CLEARSKY_SCREENSHOT_DIR"):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / name)
    return path


def test_clearsky_page_and_run_tab_in_chromium(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from airflow_provider_clearsky.emulator.config import DEMO_API_KEY

    demo = Demo(tmp_path / "demo", "--ready-timeout", "340")  # a busy machine starts Airflow slowly
    try:
        ready = demo.wait_for(r"Airflow is running at (\S+)\s+\(user admin, password (\S+)\)", timeout=360)
        url, password = ready.group(1), ready.group(2)
        emulator_url = demo.wait_for(r"ClearSKY emulator (http://127\.0\.0\.1:\d+)", timeout=5).group(1)
        token = httpx.post(f"{url}/auth/token", json={"username": "admin", "password": password}, timeout=15)
        token.raise_for_status()
        token_value = token.json()["access_token"]
        _run_monthly(url, token_value, tmp_path / "imagery")

        [order] = httpx.get(f"{emulator_url}/_emulator/orders", timeout=10).json()["Data"]
        guid = order["TaskOrderGuid"]
        charges = httpx.get(f"{emulator_url}/_emulator/charges", timeout=10).json()["Data"]
        cost = f"{sum(c['eur'] for c in charges if c['kind'] == 'order'):,.2f}"
        files = list((tmp_path / "imagery").rglob("*.tif"))
        assert files

        bodies: list[str] = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
            context = browser.new_context(viewport={"width": 1500, "height": 1000})
            context.add_cookies([{"name": "_token", "value": token_value, "url": url}])
            page = context.new_page()
            page.on("response", lambda response: bodies.append(_text_of(response)))

            # The ClearSKY item of the navigation: the page inside Airflow's UI.
            page.goto(f"{url}/plugin/clearsky")
            frame = page.frame_locator("iframe").first
            frame.locator(".order-guid").first.wait_for(timeout=60_000)
            page.wait_for_load_state("networkidle")
            _save(page, tmp_path, "clearsky-page.png")  # the README's screenshot
            section = frame.locator("section.connection").first
            assert guid in section.locator("#orders").inner_text()
            row = section.locator("#orders tbody tr", has_text=guid)
            assert cost in row.locator(".order-cost").inner_text()
            # The order's files of every run that used it (the scheduler's own run of the unpaused DAG reuses the
            # order too); this run's alone are on its tab below.
            assert int(row.locator(".file-count").inner_text()) >= len(files)
            assert RUN_ID in row.inner_text()
            assert "cancel within" in row.inner_text()

            # The same page at its own URL (how Airflow 3.0 shows it).
            page.goto(f"{url}/clearsky/")
            page.locator(".order-guid").first.wait_for()
            _save(page, tmp_path, "clearsky-page-direct.png")
            assert DEMO_API_KEY not in page.content()

            # The DAG run's ClearSKY tab.
            page.goto(f"{url}/dags/{DAG_ID}/runs/{RUN_ID}/plugin/clearsky_run")
            tab = page.frame_locator("iframe").first
            tab.locator(".run-cost").wait_for(timeout=60_000)
            page.wait_for_load_state("networkidle")
            _save(page, tmp_path, "clearsky-run-tab.png")
            assert guid in tab.locator("#run-orders").inner_text()
            # The run that ordered shows the cost; the scheduler's own run of the unpaused DAG may order first,
            # and then this one reuses the order and paid nothing.
            did = tab.locator("#run-orders").inner_text()
            assert (cost in tab.locator(".run-cost").inner_text()) if "created" in did else ("reused" in did)
            assert tab.locator("h3 .file-count").inner_text() == str(len(files))
            browser.close()
        assert bodies and not [body for body in bodies if DEMO_API_KEY in body]
    finally:
        demo.stop()


def _text_of(response: Any) -> str:
    try:
        return str(response.text())
    except Exception:  # redirects and binary bodies have no text; they cannot carry the key as text either
        return ""
