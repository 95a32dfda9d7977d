"""ASGI plumbing below the FastAPI app: message types, raw JSON answers, draining a request, and dropping the
TCP connection for real.

Faults that must really drop the TCP connection use the uvicorn transport behind ``send`` (see
``transport_of``), set ``SO_LINGER`` 0 and abort it, so the client sees a connection reset / remote protocol
error and never a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .messages import error_result

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def transport_of(send: Send) -> asyncio.Transport | None:
    """uvicorn's ``send`` is a bound method of its RequestResponseCycle, which holds the transport."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    # uvloop transports are not asyncio.BaseTransport subclasses: duck-type.
    if transport is not None and hasattr(transport, "abort") and hasattr(transport, "get_extra_info"):
        return transport  # type: ignore[no-any-return]
    return None


async def abort(transport: asyncio.Transport | None) -> None:
    if transport is None:
        raise RuntimeError("cannot drop the connection: server transport not reachable")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    for _ in range(3):
        await asyncio.sleep(0)


async def drain(receive: Receive) -> None:
    while True:
        msg = await receive()
        if msg["type"] != "http.request" or not msg.get("more_body"):
            return


async def send_json(
    send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    raw = json.dumps(body).encode()
    hdrs = [(b"content-type", b"application/json; charset=utf-8"), (b"content-length", str(len(raw)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": hdrs + (headers or [])})
    await send({"type": "http.response.body", "body": raw})


def declared_length(start: Message) -> int:
    """The Content-Length of an ``http.response.start`` message, or -1 when it declares none."""
    for name, value in start.get("headers", []):
        if name.lower() == b"content-length" and value.isdigit():
            return int(value)
    return -1


async def send_error(
    send: Send, status: int, message: str, code: int, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Answer with the service's error envelope, outside the FastAPI app."""
    await send_json(send, status, error_result(message, code), headers)
