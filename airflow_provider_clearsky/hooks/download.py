"""A download in flight: its file name, its size, and its bytes as a stream of chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx

from airflow_provider_clearsky.hooks._api import ApiCall, filename_from_disposition, transport_error

CHUNK_SIZE = 1024 * 1024


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


class Download(_DownloadBase):
    """A streamed download answer (sync). Transport failures mid-body raise ``TransportError``."""

    def iter_bytes(self, chunk_size: int | None = CHUNK_SIZE) -> Iterator[bytes]:
        """Yield the body in chunks of ``chunk_size`` bytes, or as received from the network with ``None``.

        ``None`` makes no re-chunking copies: the fastest way to stream a large file.
        """
        try:
            yield from self._response.iter_bytes(chunk_size)
        except httpx.TransportError as error:
            raise transport_error(self._call, error) from error


class AsyncDownload(_DownloadBase):
    """A streamed download answer (async)."""

    async def aiter_bytes(self, chunk_size: int | None = CHUNK_SIZE) -> AsyncIterator[bytes]:
        """Yield the body as :meth:`Download.iter_bytes` does, without blocking the event loop."""
        try:
            async for chunk in self._response.aiter_bytes(chunk_size):
                yield chunk
        except httpx.TransportError as error:
            raise transport_error(self._call, error) from error
