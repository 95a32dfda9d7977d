"""Downloads over HTTPS, as from the real API: the emulator serves TLS with a certificate the worker trusts."""

from __future__ import annotations

import hashlib
import json
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_clearsky import exceptions as exc
from airflow_provider_clearsky.emulator.handle import EmulatorHandle
from airflow_provider_clearsky.hooks import download as download_module
from airflow_provider_clearsky.hooks._api import RetryPolicy
from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook
from tests.support.tls import self_signed_certificate

from .test_clearsky import AOI, START, historical
from .test_download import REQUEST, read_all_into

pytestmark = pytest.mark.integration


@pytest.fixture
def tls_emulator(clearsky_emulator_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EmulatorHandle:
    cert, key = self_signed_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trusted as a private CA is, through the environment
    emulator: EmulatorHandle = clearsky_emulator_factory(tls_certfile=str(cert), tls_keyfile=str(key))
    emulator.set_airflow_connection(monkeypatch)
    emulator.control.set_time(START)
    return emulator


@pytest.fixture
def hook(tls_emulator: EmulatorHandle) -> Any:
    hook = ClearSkyHook(retry_policy=RetryPolicy(max_attempts=2, sleep=lambda _: None))
    hook.create_order(historical(api_requests=6))
    tls_emulator.control.advance(hours=4)
    yield hook
    hook.close()


def test_the_emulator_serves_https_only_to_clients_that_trust_its_certificate(
    tls_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tls_emulator.url.startswith("https://127.0.0.1:")
    headers = {"x-api-key": tls_emulator.api_key}
    assert httpx.get(f"{tls_emulator.url}/api/tasking/models", headers=headers).status_code == 200
    monkeypatch.delenv("SSL_CERT_FILE")
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{tls_emulator.url}/api/tasking/models", headers=headers)


def test_readinto_over_tls_reads_the_decrypted_socket_with_the_same_bytes_as_httpx(hook: ClearSkyHook) -> None:
    with hook.stream_composite(REQUEST) as download:
        through_httpx = b"".join(download.iter_bytes(64 * 1024))
    with hook.stream_composite(REQUEST) as download:
        body, reads = read_all_into(download, 1024 * 1024)
        reader = download._body
    assert isinstance(reader, download_module._SocketBody) and isinstance(reader._sock, ssl.SSLSocket)
    assert len(body) > 4 * 2**20 and hashlib.sha256(body).digest() == hashlib.sha256(through_httpx).digest()
    # A TLS read returns one record of at most 16 KiB: larger reads joined the records already there.
    assert 16 * 1024 < max(reads) <= download_module.TLS_BATCH_SIZE
    with hook.stream_composite(REQUEST) as download:  # a buffer smaller than a TLS record
        small, small_reads = read_all_into(download, 1000)
    assert small == body and max(small_reads) == 1000


def test_readinto_over_tls_hands_over_what_has_arrived_without_waiting_for_more(
    hook: ClearSkyHook, tls_emulator: EmulatorHandle
) -> None:
    chunk = 20_000  # the body arrives in pieces of 20,000 bytes, one a second
    tls_emulator.control.add_fault("trickle", path="/api/satelliteimages/process/composite", chunk=chunk, delay=1.0)
    buffer = bytearray(1024 * 1024)
    with hook.stream_composite(REQUEST) as download:
        download.readinto(buffer)  # httpx's first piece
        started = time.monotonic()
        sizes = [download.readinto(buffer) for _ in range(2)]
        seconds = time.monotonic() - started
    # Filling a batch (256 KiB) would take 13 s per read; what has arrived is handed out at once.
    assert all(0 < size < 5 * chunk for size in sizes) and seconds < 6


def test_a_tls_body_cut_short_raises_transport_error(hook: ClearSkyHook, tls_emulator: EmulatorHandle) -> None:
    tls_emulator.control.add_fault("truncate", path="/api/satelliteimages/process/composite", times=1)
    buffer, received, readers = bytearray(1024 * 1024), [], []

    def read_all() -> None:
        with hook.stream_composite(REQUEST) as download:
            received.append(download.content_length or 0)
            while count := download.readinto(buffer):
                received.append(count)
                readers.append(download._body)

    with pytest.raises(exc.TransportError) as caught:
        read_all()
    # Every byte received was handed out before the error: a batch cut short by it loses nothing.
    assert len(received) > 2 and sum(received[1:]) == received[0] - readers[-1].remaining < received[0]
    assert caught.value.request_sent  # a paid download: never re-sent by the hook


def test_the_download_operator_over_https_saves_the_file_its_sidecar_describes(
    tls_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    from airflow_provider_clearsky.operators.download import ClearSkyDownloadCompositeOperator

    hook = ClearSkyHook()
    hook.create_order(historical(api_requests=2))
    hook.close()
    tls_emulator.control.advance(hours=4)
    operator = ClearSkyDownloadCompositeOperator(
        task_id="https", wkt=AOI, date="2025-06-15", resolution=10, destination=str(tmp_path / "out")
    )
    uri = operator.execute({})
    saved = Path(str(uri).removeprefix("file://"))
    sidecar = json.loads(saved.with_name(saved.name + ".json").read_text())
    assert sidecar["size"] == saved.stat().st_size > 4 * 2**20
    assert sidecar["sha256"] == hashlib.sha256(saved.read_bytes()).hexdigest()
    assert len(tls_emulator.control.charges("download")) == 1
