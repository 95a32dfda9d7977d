"""A download in flight: its file name, its size, and its bytes as a stream of chunks."""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx

from airflow_provider_clearsky.exceptions import TransportError
from airflow_provider_clearsky.hooks._api import ApiCall, filename_from_disposition, transport_error

CHUNK_SIZE = 1024 * 1024
#: The largest single read of a body from the socket. httpcore reads 64 KiB at a time and h11 parses every
#: read; reading the socket directly in large reads is what lets a download keep up with curl.
SOCKET_READ_SIZE = 1024 * 1024


class _DownloadBase:
    def __init__(self, call: ApiCall[Any], response: httpx.Response) -> None:
        self._call = call
        self._response = response
        self.status_code = response.status_code
        self.filename = filename_from_disposition(response.headers.get("content-disposition"))
        length = response.headers.get("content-length")
        self.content_length: int | None = int(length) if length and length.isdigit() else None
        self.content_type = response.headers.get("content-type")
        # All response headers (read-only), e.g. for provenance or attribution notices sent with the file.
        self.headers: httpx.Headers = response.headers
        # Only an identity-encoded body has the byte count that Content-Length promises.
        self.exact_length = response.headers.get("content-encoding", "identity").lower() == "identity"

    @property
    def uploaded(self) -> bool:
        """True when the API wrote the file to the request's upload URL (201, no body)."""
        return self.status_code == 201


def _body_socket(response: httpx.Response) -> socket.socket | None:
    """Return the socket the body arrives on, when reading it directly yields the body's bytes.

    That holds for plain TCP and for TLS straight over TCP (``ssl.SSLSocket.recv`` decrypts), not for TLS
    inside a TLS proxy tunnel (the socket carries the outer encryption) nor for transports without a socket
    (mocks, WSGI): those keep httpx's own reads.
    """
    stream = response.extensions.get("network_stream")
    if stream is None or response.http_version != "HTTP/1.1":
        return None
    try:
        sock = stream.get_extra_info("socket")
        ssl_object = stream.get_extra_info("ssl_object")
    except Exception:  # a network stream of another backend
        return None
    if not isinstance(sock, socket.socket):
        return None
    if ssl_object is not None and not isinstance(sock, ssl.SSLSocket):
        return None
    return sock


def _read_timeout(response: httpx.Response) -> float | None:
    timeout = response.request.extensions.get("timeout")
    value = timeout.get("read") if isinstance(timeout, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


class Download(_DownloadBase):
    """A streamed download answer (sync). Transport failures mid-body raise ``TransportError``."""

    def iter_bytes(self, chunk_size: int | None = CHUNK_SIZE) -> Iterator[bytes]:
        """Yield the body in chunks of ``chunk_size`` bytes, or as received from the network with ``None``.

        ``None`` is the fastest way to stream a large file: when the body has a ``Content-Length`` and no
        content encoding, httpx parses the headers and the first piece of the body, and the rest is read
        straight from the socket in reads of up to ``SOCKET_READ_SIZE`` (one copy per byte, no parsing).
        The connection is then closed rather than reused. Fewer bytes than announced raise
        ``TransportError``, as httpx does.
        """
        try:
            if chunk_size is None:
                yield from self._as_received()
            else:
                yield from self._response.iter_bytes(chunk_size)
        except httpx.TransportError as error:
            raise transport_error(self._call, error) from error

    def _as_received(self) -> Iterator[bytes]:
        remaining = self.content_length
        sock = _body_socket(self._response) if remaining is not None and self.exact_length else None
        if remaining is None or sock is None:
            yield from self._response.iter_bytes(None)
            return
        # httpx delivers whatever h11 holds already (the body's first bytes, read with the headers); after
        # that first piece h11's buffer is empty, so everything else is still in the socket.
        raw = self._response.iter_bytes(None)  # identity encoding: the raw bytes
        first = next(raw, b"")
        if first:
            remaining -= len(first)
            yield first
        if remaining <= 0:
            yield from raw  # lets httpx finish the response (and keep the connection)
            return
        yield from self._read_socket(sock, remaining)

    def _read_socket(self, sock: socket.socket, remaining: int) -> Iterator[bytes]:
        sock.settimeout(_read_timeout(self._response))
        try:
            while remaining > 0:
                chunk = sock.recv(min(remaining, SOCKET_READ_SIZE))
                if not chunk:
                    raise TransportError(
                        f"RemoteProtocolError: peer closed connection with {remaining} bytes of the body not sent",
                        request_sent=True,
                        endpoint=self._call.endpoint,
                    )
                remaining -= len(chunk)
                yield chunk
        except TimeoutError:
            raise TransportError(
                "ReadTimeout: the body stopped arriving", request_sent=True, endpoint=self._call.endpoint
            ) from None
        except OSError as error:
            detail = error.strerror or type(error).__name__
            raise TransportError(f"ReadError: {detail}", request_sent=True, endpoint=self._call.endpoint) from None


class AsyncDownload(_DownloadBase):
    """A streamed download answer (async)."""

    async def aiter_bytes(self, chunk_size: int | None = CHUNK_SIZE) -> AsyncIterator[bytes]:
        """Yield the body as :meth:`Download.iter_bytes` does, without blocking the event loop."""
        try:
            async for chunk in self._response.aiter_bytes(chunk_size):
                yield chunk
        except httpx.TransportError as error:
            raise transport_error(self._call, error) from error
