"""Fault injection, concurrency limits and the admin control plane."""

from __future__ import annotations

import concurrent.futures
import time

import httpx
import pytest

from airflow_provider_clearsky.emulator import DEMO_API_KEY, AccountConfig
from airflow_provider_clearsky.emulator.faults import parse_fault_spec
from airflow_provider_clearsky.emulator.handle import EmulatorHandle

from .conftest import data, download_body, error, order_body, produced_order, utc

MODELS = "/api/tasking/models"
DROPPED = (httpx.RemoteProtocolError, httpx.ReadError)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_status_faults_fire_n_times(client: httpx.Client, emu: EmulatorHandle, status: int) -> None:
    emu.control.add_fault(str(status), path=MODELS, times=2)
    for _ in range(2):
        r = client.get(MODELS)
        assert r.status_code == status and "retry-after" not in r.headers
        assert r.json()["Error"]["Code"] == status
    data(client.get(MODELS))
    assert emu.control.faults()[0]["fired"] == 2


def test_429_with_retry_after_and_method_filter(client: httpx.Client, emu: EmulatorHandle) -> None:
    emu.control.add_fault_spec("429,path=/api/tasking/orders,method=POST,retry_after=3")
    data(client.get("/api/tasking/orders"))  # GET not affected
    r = client.post("/api/tasking/orders", json=order_body())
    assert r.status_code == 429 and r.headers["retry-after"] == "3"
    assert emu.control.order_count() == 0
    data(client.post("/api/tasking/orders", json=order_body()))


def test_latency(client: httpx.Client, emu: EmulatorHandle) -> None:
    emu.control.add_fault("latency", path=MODELS, delay=0.3)
    t = time.monotonic()
    data(client.get(MODELS))
    assert time.monotonic() - t >= 0.3
    t = time.monotonic()
    data(client.get(MODELS))
    assert time.monotonic() - t < 0.3


def test_reset_before_response(client: httpx.Client, emu: EmulatorHandle) -> None:
    emu.control.add_fault("reset", path="/api/tasking/orders", method="POST", times=1)
    with pytest.raises(DROPPED):
        client.post("/api/tasking/orders", json=order_body())
    assert emu.control.order_count() == 0  # never processed
    data(client.post("/api/tasking/orders", json=order_body()))


def test_drop_after_commit_creates_the_order(client: httpx.Client, emu: EmulatorHandle) -> None:
    emu.control.add_fault_spec("drop_after_commit,path=/api/tasking/orders,method=POST")
    with pytest.raises(DROPPED):
        client.post("/api/tasking/orders", json=order_body())
    assert emu.control.order_count() == 1  # committed and charged
    assert len(emu.control.charges("order")) == 1
    # a blind retry makes a second order (no idempotency); looking it up first is the client's job
    data(client.post("/api/tasking/orders", json=order_body()))
    assert emu.control.order_count() == 2


def test_hold_after_commit_commits_before_answering(client: httpx.Client, emu: EmulatorHandle) -> None:
    emu.control.add_fault_spec("hold_after_commit,path=/api/tasking/orders,method=POST,delay=5")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        answer = pool.submit(client.post, "/api/tasking/orders", json=order_body())
        deadline = time.monotonic() + 4
        while emu.control.order_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert emu.control.order_count() == 1 and not answer.done()  # committed, not yet answered
        guid = data(answer.result())["TaskOrderGuid"]
    assert emu.control.order(guid)["ChargedEur"] > 0


def test_peak_concurrency_is_recorded(clearsky_emulator_factory) -> None:  # type: ignore[no-untyped-def]
    h = clearsky_emulator_factory(faults=[f"latency,path={MODELS},delay=0.5,times=0"], admin=True)
    assert h.control.peak_concurrency() == 0
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda _: httpx.get(h.url + MODELS, headers={"x-api-key": h.api_key}, timeout=10), range(3)))
    assert h.control.peak_concurrency() == 3
    answer = httpx.get(h.url + "/_emulator/concurrency", timeout=10).json()["Data"]
    assert answer == {"PeakInFlight": 3, "InFlight": 0}
    httpx.delete(h.url + "/_emulator/concurrency", timeout=10)
    assert h.control.peak_concurrency() == 0


def test_truncated_body(client: httpx.Client, emu: EmulatorHandle) -> None:
    produced_order(client, emu, ApiRequests=5)
    emu.control.add_fault("truncate", path="/api/satelliteimages/process/composite", bytes=1000)
    got = 0

    def read_all() -> None:
        nonlocal got
        with client.stream("POST", "/api/satelliteimages/process/composite", json=download_body()) as r:
            assert r.status_code == 200 and int(r.headers["content-length"]) > 1000
            for chunk in r.iter_bytes():
                got += len(chunk)

    with pytest.raises(DROPPED):
        read_all()
    assert got == 1000
    emu.control.add_fault("truncate", path=MODELS)
    with pytest.raises(DROPPED):
        client.get(MODELS)
    r = client.post("/api/satelliteimages/process/composite", json=download_body())
    assert r.status_code == 200 and len(r.content) == int(r.headers["content-length"])


def test_trickle(client: httpx.Client, emu: EmulatorHandle) -> None:
    emu.control.add_fault("trickle", path=MODELS, chunk=100, delay=0.02)
    full = client.get(MODELS)
    emu.control.clear_faults()
    t = time.monotonic()
    emu.control.add_fault("trickle", path=MODELS, chunk=100, delay=0.02)
    r = client.get(MODELS)
    assert time.monotonic() - t >= 0.02 * (len(r.content) // 100 - 1)
    assert r.content == full.content


def test_fault_spec_parsing() -> None:
    rule = parse_fault_spec("503, path=/api/tasking/*, times=0")
    assert rule.kind == "status" and rule.status == 503 and rule.times == 0
    assert rule.matches("GET", "/api/tasking/orders") and not rule.matches("GET", "/api/apikey/info")
    for bad in ("", "explode", "latency,colour=red", "status,status=418"):
        with pytest.raises(ValueError):  # noqa: PT011
            parse_fault_spec(bad)


def test_startup_faults_and_concurrency_429(clearsky_emulator_factory) -> None:  # type: ignore[no-untyped-def]
    h = clearsky_emulator_factory(
        accounts=[AccountConfig("conc-key-invented", max_concurrent_connections=2)],
        faults=[f"latency,path={MODELS},delay=0.5,times=0"],
        concurrency_retry_after=1,
    )
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(lambda _: httpx.get(h.url + MODELS, headers={"x-api-key": h.api_key}, timeout=10), range(4))
        )
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 200, 429, 429]
    refused = [entry for entry in h.control.request_log() if entry["status"] == 429]
    assert all(len(entry["held_by"]) == 2 for entry in refused)  # names the two requests that held the limit
    assert refused[0]["held_by"][0].startswith(f"GET {MODELS} from 127.0.0.1:")
    busy = next(r for r in results if r.status_code == 429)
    assert busy.headers["retry-after"] == "1"


def test_concurrency_as_1003(clearsky_emulator_factory) -> None:  # type: ignore[no-untyped-def]
    h = clearsky_emulator_factory(
        accounts=[AccountConfig("conc-key-invented", max_concurrent_connections=1)],
        faults=[f"latency,path={MODELS},delay=0.4,times=0"],
        concurrency_error=1003,
    )
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(
            pool.map(lambda _: httpx.get(h.url + MODELS, headers={"x-api-key": h.api_key}, timeout=10), range(2))
        )
    bad = [r for r in results if r.status_code != 200]
    assert len(bad) == 1
    error(bad[0], 400, 1003)


def test_a_client_with_its_whole_answer_may_ask_again_at_once(clearsky_emulator_factory) -> None:  # type: ignore[no-untyped-def]
    """The slot frees when the declared Content-Length has left, not when the app's closing message does."""
    h = clearsky_emulator_factory(accounts=[AccountConfig("conc-key-invented", max_concurrent_connections=1)])
    h.control.set_time(utc(2025, 6, 10, 12))
    composite = "/api/satelliteimages/process/composite"
    with h.client() as c:
        produced_order(c, h, ApiRequests=5)
        # The trickle waits 1 s after each streamed chunk, the last one included, before the closing message.
        h.control.add_fault("trickle", path=composite, chunk=1 << 20, delay=1.0)
        r = c.post(composite, json=download_body())
        assert r.status_code == 200 and len(r.content) == int(r.headers["content-length"])
        with h.client() as other:  # another process, on its own connection (one connection serialises requests)
            data(other.get(MODELS))
    assert h.control.peak_concurrency() == 1


def test_admin_endpoints(emu: EmulatorHandle) -> None:
    admin = httpx.Client(base_url=emu.url)
    clock = data(admin.post("/_emulator/clock", json={"set": "2025-06-10T12:00:00Z", "speed": 0}))
    assert clock["Now"].startswith("2025-06-10T12:00:00")
    clock = data(admin.post("/_emulator/clock", json={"advance": {"days": 1, "hours": 2}}))
    assert clock["Now"].startswith("2025-06-11T14:00:00")
    assert data(admin.post("/_emulator/faults", json={"spec": "503,path=/api/tasking/models"}))["status"] == 503
    assert len(data(admin.get("/_emulator/faults"))) == 1
    with emu.client() as c:
        assert c.get(MODELS).status_code == 503
        data(c.post("/api/tasking/orders", json=order_body()))
    data(admin.delete("/_emulator/faults"))
    assert len(data(admin.get("/_emulator/orders"))) == 1
    assert len(data(admin.get("/_emulator/requests"))) == 2
    assert data(admin.get("/_emulator/charges"))[0]["kind"] == "order"
    acct = data(admin.post("/_emulator/accounts", json={"key": "admin-made-key", "euro_credit_amount": 5}))
    assert acct["EuroCreditAmount"] == 5
    assert len(data(admin.get("/_emulator/accounts"))) == 2
    # the API key is not an admin credential, and admin routes are not API routes
    error(
        admin.get("/api/tasking/models", headers={"x-api-key": "admin-made-key"}).__class__
        and httpx.get(emu.url + "/api/tasking/models"),
        401,
        401,
    )
    data(admin.post("/_emulator/reset"))
    assert emu.control.order_count() == 0 and emu.control.request_count() == 0


def test_admin_off_by_default_and_token(clearsky_emulator_factory) -> None:  # type: ignore[no-untyped-def]
    off = clearsky_emulator_factory(admin=False)
    error(httpx.get(off.url + "/_emulator/clock"), 404, 404)
    tok = clearsky_emulator_factory(admin=True, admin_token="admin-token-invented")
    error(httpx.get(tok.url + "/_emulator/clock"), 401, 401)
    error(httpx.get(tok.url + "/_emulator/clock", headers={"x-api-key": DEMO_API_KEY}), 401, 401)
    data(httpx.get(tok.url + "/_emulator/clock", headers={"x-admin-token": "admin-token-invented"}))
