"""A download in flight: its file name, its size, and its bytes as a stream of chunks."""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from airflow_provider_clearsky.exceptions import TransportError
from airflow_provider_clearsky.hooks._api import ApiCall, filename_from_disposition, transport_error

CHUNK_SIZE = 1024 * 1024
#: The largest single read of a body from the socket. httpcore reads 64 KiB at a time and h11 parses every
#: read; reading the socket directly in large reads is what lets a download keep up with curl.
SOCKET_READ_SIZE = 1024 * 1024
#: Over TLS one read returns one record (at most 16 KiB). ``readinto`` reads on, without waiting, while more
#: records are there already, up to this many bytes: the writer and its hashing thread then get large pieces
#: (one hand-over per record ran at less than half the speed, see benchmarks/README.md).
TLS_BATCH_SIZE = 256 * 1024


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


class _Pieces:
    """Copies a stream of byte pieces into the buffers it is asked to fill."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._left = memoryview(b"")

    def chunks(self) -> Iterator[bytes]:
        """Yield the pieces as they come (none of them handed out by :meth:`readinto` before)."""
        return self._pieces

    def readinto(self, buffer: memoryview) -> int:
        """Copy the next bytes into ``buffer``; return how many, 0 once the pieces have ended."""
        while not self._left:
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self._left = memoryview(piece)
        size = min(len(buffer), len(self._left))
        buffer[:size] = self._left[:size]
        self._left = self._left[size:]
        return size


class _SocketBody:
    """The rest of a body after httpx's first piece, read straight from the socket (``Content-Length`` known)."""

    def __init__(self, download: Download, sock: socket.socket, first: bytes, raw: Iterator[bytes]) -> None:
        self._endpoint = download._call.endpoint
        self._sock = sock
        self._first = _Pieces(iter([first] if first else []))
        self._raw = raw
        self.remaining = (download.content_length or 0) - len(first)
        # Once the socket itself was read, httpx's parser is behind: the connection is closed, not reused.
        self._whole_in_first = self.remaining <= 0
        sock.settimeout(_read_timeout(download._response))
        self._tls = isinstance(sock, ssl.SSLSocket)
        self._failure: TransportError | None = None  # raised by the next read: its batch's bytes came first

    def chunks(self) -> Iterator[bytes]:
        """Yield httpx's first piece, then the rest in reads of up to ``SOCKET_READ_SIZE`` (fresh objects)."""
        yield from self._first.chunks()
        while self.remaining > 0:
            with self._socket_errors():
                chunk = self._sock.recv(min(self.remaining, SOCKET_READ_SIZE))
            self._count(len(chunk))
            yield chunk
        self._finish()

    def readinto(self, buffer: memoryview) -> int:
        """Fill ``buffer`` with the body's next bytes; return how many, 0 once the body has ended."""
        size = self._first.readinto(buffer)
        if size:
            return size
        if self._failure is not None:
            raise self._failure
        if self.remaining <= 0:
            self._finish()
            return 0
        size = self._receive(buffer)
        batch = min(len(buffer), TLS_BATCH_SIZE)
        if self._tls and size < batch:
            size += self._receive_arrived(buffer[size:batch])
        return size

    def _receive(self, buffer: memoryview, *, waiting: bool = True) -> int:
        with self._socket_errors(waiting=waiting):
            size = self._sock.recv_into(buffer[: min(self.remaining, len(buffer))])
        self._count(size)
        return size

    def _receive_arrived(self, buffer: memoryview) -> int:
        """Fill ``buffer`` with what has arrived already, without waiting for more (TLS records).

        A failure after some bytes is kept for the next read, so that the bytes received are handed out first.
        """
        size = 0
        timeout = self._sock.gettimeout()
        self._sock.settimeout(0)  # a read finding nothing raises SSLWantReadError instead of waiting
        try:
            while size < len(buffer) and self.remaining > 0:
                size += self._receive(buffer[size:], waiting=False)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        except TransportError as error:
            self._failure = error
        finally:
            self._sock.settimeout(timeout)
        return size

    def _finish(self) -> None:
        if self._whole_in_first:  # let httpx finish the response (and keep the connection)
            for _ in self._raw:
                pass

    def _count(self, size: int) -> None:
        if not size:
            raise TransportError(
                f"RemoteProtocolError: peer closed connection with {self.remaining} bytes of the body not sent",
                request_sent=True,
                endpoint=self._endpoint,
            )
        self.remaining -= size

    @contextmanager
    def _socket_errors(self, *, waiting: bool = True) -> Iterator[None]:
        try:
            yield
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError) as error:
            if not waiting:
                raise  # a read that must not wait found nothing more yet: not an error
            raise TransportError(f"ReadError: {error}", request_sent=True, endpoint=self._endpoint) from None
        except TimeoutError:
            raise TransportError(
                "ReadTimeout: the body stopped arriving", request_sent=True, endpoint=self._endpoint
            ) from None
        except OSError as error:
            detail = error.strerror or type(error).__name__
            raise TransportError(f"ReadError: {detail}", request_sent=True, endpoint=self._endpoint) from None


class Download(_DownloadBase):
    """A streamed download answer (sync). Transport failures mid-body raise ``TransportError``."""

    def __init__(self, call: ApiCall[Any], response: httpx.Response) -> None:
        super().__init__(call, response)
        self._body: _SocketBody | _Pieces | None = None
        self._reader: str | None = None  # how the body is being read: "iter_bytes" or "readinto"

    def iter_bytes(self, chunk_size: int | None = CHUNK_SIZE) -> Iterator[bytes]:
        """Yield the body in chunks of ``chunk_size`` bytes, or as received from the network with ``None``.

        With ``None``, when the body has a ``Content-Length`` and no content encoding, httpx parses the
        headers and the first piece of the body, and the rest is read straight from the socket in reads of up
        to ``SOCKET_READ_SIZE`` (no parsing). The connection is then closed rather than reused. Fewer bytes
        than announced raise ``TransportError``, as httpx does. :meth:`readinto` is faster still.
        """
        try:
            if chunk_size is not None:
                yield from self._response.iter_bytes(chunk_size)
                return
            yield from self._open_body("iter_bytes").chunks()
        except httpx.TransportError as error:
            raise transport_error(self._call, error) from error

    def readinto(self, buffer: bytearray | memoryview) -> int:
        """Fill ``buffer`` with the body's next bytes; return how many, 0 once the body has ended.

        The fastest way to stream a large file: with a ``Content-Length`` and no content encoding, everything
        after httpx's first piece is received straight into ``buffer`` (``socket.recv_into``), so the caller
        can reuse a few buffers instead of allocating one per read (each fresh allocation costs page faults).
        Otherwise httpx's pieces are copied in. Fewer bytes than announced raise ``TransportError``.
        """
        view = memoryview(buffer).cast("B")
        if not view:
            raise ValueError("readinto needs a buffer of at least one byte")
        try:
            return self._open_body("readinto").readinto(view)
        except httpx.TransportError as error:
            raise transport_error(self._call, error) from error

    def _open_body(self, reader: str) -> _SocketBody | _Pieces:
        if self._reader is not None and (reader == "iter_bytes" or reader != self._reader):  # only readinto repeats
            raise RuntimeError(f"the body is already being read (by {self._reader}); it can be read once, one way")
        self._reader = reader
        if self._body is None:
            self._body = self._socket_body() or _Pieces(self._response.iter_bytes(None))
        return self._body

    def _socket_body(self) -> _SocketBody | None:
        # With Transfer-Encoding, the bytes on the wire are framed (chunked) whatever Content-Length says.
        if self.content_length is None or not self.exact_length or "transfer-encoding" in self.headers:
            return None
        sock = _body_socket(self._response)
        if sock is None:
            return None
        # httpx delivers whatever h11 holds already (the body's first bytes, read with the headers); after
        # that first piece h11's buffer is empty, so everything else is still in the socket.
        raw = self._response.iter_bytes(None)  # identity encoding: the raw bytes
        return _SocketBody(self, sock, next(raw, b""), raw)


class AsyncDownload(_DownloadBase):
    """A streamed download answer (async)."""

    async def aiter_bytes(self, chunk_size: int | None = CHUNK_SIZE) -> AsyncIterator[bytes]:
        """Yield the body as :meth:`Download.iter_bytes` does, without blocking the event loop."""
        try:
            async for chunk in self._response.aiter_bytes(chunk_size):
                yield chunk
        except httpx.TransportError as error:
            raise transport_error(self._call, error) from error
