"""The download body read straight from the socket: same bytes as httpx's reads, in large reads, failures typed."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from airflow_provider_clearsky import exceptions as exc
from airflow_provider_clearsky.hooks import download as download_module
from airflow_provider_clearsky.hooks._api import RetryPolicy
from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook
from airflow_provider_clearsky.models import ImageryRequest
from tests.support.hook_support import scripted_hook

from .test_clearsky import AOI, START, historical

pytestmark = pytest.mark.integration

#: 10 bands at 10 m over AOI: several MiB, many socket reads.
REQUEST = ImageryRequest(wkt=AOI, date="2025-06-15", resolution=10)


@pytest.fixture
def hook(clearsky_emulator, monkeypatch):
    clearsky_emulator.set_airflow_connection(monkeypatch)
    clearsky_emulator.control.set_time(START)
    hook = ClearSkyHook(retry_policy=RetryPolicy(max_attempts=2, sleep=lambda _: None))
    hook.create_order(historical(api_requests=4))
    clearsky_emulator.control.advance(hours=4)
    yield hook
    hook.close()


def test_body_as_received_is_read_from_the_socket_in_large_reads(hook):
    with hook.stream_composite(REQUEST) as download:
        chunks = list(download.iter_bytes(None))
        length = download.content_length
    with hook.stream_composite(REQUEST) as download:  # the hook works on after a socket read
        through_httpx = b"".join(download.iter_bytes(64 * 1024))
    body = b"".join(chunks)
    assert length is not None and len(body) == length > 4 * 2**20
    assert hashlib.sha256(body).digest() == hashlib.sha256(through_httpx).digest()
    # httpcore never hands over more than 64 KiB per read: larger pieces come from the socket itself.
    assert max(len(chunk) for chunk in chunks) > 64 * 1024
    assert max(len(chunk) for chunk in chunks) <= download_module.SOCKET_READ_SIZE


def test_a_body_cut_short_on_the_socket_raises_transport_error(hook, clearsky_emulator):
    clearsky_emulator.control.add_fault("truncate", path="/api/satelliteimages/process/composite", times=1)
    received: list[int] = []

    def read_all() -> None:
        with hook.stream_composite(REQUEST) as download:
            received.append(download.content_length or 0)
            for chunk in download.iter_bytes(None):
                received.append(len(chunk))

    with pytest.raises(exc.TransportError) as caught:
        read_all()
    assert 0 < sum(received[1:]) < received[0]
    assert caught.value.request_sent  # a paid download: never re-sent by the hook


def test_a_transport_without_a_socket_keeps_httpx_reads(clearsky_connection):
    payload = b"II*\x00" + bytes(range(256)) * 1024
    scripted, _, _ = scripted_hook(httpx.Response(200, content=payload, headers={"content-type": "image/tiff"}))
    with scripted.stream_composite(REQUEST) as download:
        assert b"".join(download.iter_bytes(None)) == payload


def read_all_into(download: download_module.Download, size: int) -> tuple[bytes, list[int]]:
    """The body read with ``readinto`` into one reused buffer of ``size`` bytes, and each read's length."""
    buffer = bytearray(size)
    body, reads = bytearray(), []
    while count := download.readinto(buffer):
        body += buffer[:count]
        reads.append(count)
    return bytes(body), reads


def test_readinto_fills_reused_buffers_with_the_same_bytes_as_httpx(hook):
    with hook.stream_composite(REQUEST) as download:
        through_httpx = b"".join(download.iter_bytes(64 * 1024))
    with hook.stream_composite(REQUEST) as download:
        body, reads = read_all_into(download, 1024 * 1024)
        assert download.readinto(bytearray(10)) == 0  # stays at the end
    assert len(body) > 4 * 2**20
    assert hashlib.sha256(body).digest() == hashlib.sha256(through_httpx).digest()
    assert max(reads) > 64 * 1024  # straight from the socket, not httpcore's 64 KiB pieces
    with hook.stream_composite(REQUEST) as download:  # a buffer smaller than httpx's first piece
        small, small_reads = read_all_into(download, 1000)
    assert small == body and max(small_reads) == 1000


def test_readinto_of_a_body_cut_short_raises_transport_error(hook, clearsky_emulator):
    clearsky_emulator.control.add_fault("truncate", path="/api/satelliteimages/process/composite", times=1)
    buffer, received = bytearray(1024 * 1024), []

    def read_all() -> None:
        with hook.stream_composite(REQUEST) as download:
            received.append(download.content_length or 0)
            while count := download.readinto(buffer):
                received.append(count)

    with pytest.raises(exc.TransportError) as caught:
        read_all()
    assert 0 < sum(received[1:]) < received[0]
    assert "ReadError" in str(caught.value) or "bytes of the body not sent" in str(caught.value)
    assert caught.value.request_sent  # a paid download: never re-sent by the hook


def test_readinto_without_a_socket_copies_httpx_pieces(clearsky_connection):
    payload = b"II*\x00" + bytes(range(256)) * 1024
    scripted, _, _ = scripted_hook(httpx.Response(200, content=payload, headers={"content-type": "image/tiff"}))
    with scripted.stream_composite(REQUEST) as download:
        body, reads = read_all_into(download, 4096)
    assert body == payload and set(reads[:-1]) == {4096}


def test_a_body_is_read_once_one_way(hook):
    with hook.stream_composite(REQUEST) as download:
        assert download.readinto(bytearray(1000)) == 1000
        with pytest.raises(RuntimeError, match="already being read"):
            next(download.iter_bytes(None))
        with pytest.raises(ValueError, match="at least one byte"):
            download.readinto(bytearray())
    with hook.stream_composite(REQUEST) as download:
        next(download.iter_bytes(None))
        with pytest.raises(RuntimeError, match="already being read"):
            download.readinto(bytearray(10))
