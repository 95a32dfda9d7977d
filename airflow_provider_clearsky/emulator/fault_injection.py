"""Injected faults: what the gateway does instead of (or around) the app when a fault rule matches a request."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from .asgi import ASGIApp, Message, Receive, Scope, Send, abort, drain, send_error
from .faults import FaultRule

Transport = asyncio.Transport | None


async def inject_fault(
    app: ASGIApp, fault: FaultRule, scope: Scope, receive: Receive, send: Send, transport: Transport
) -> None:
    """Answer the request as ``fault`` says: an error status, a delay, a reset, a lost or held answer, a cut
    or trickled body."""
    inject = _BY_KIND.get(fault.kind)
    if inject is None:
        raise AssertionError(fault.kind)
    await inject(app, fault, scope, receive, send, transport)


async def _status(app: ASGIApp, fault: FaultRule, scope: Scope, receive: Receive, send: Send, _: Transport) -> None:
    await drain(receive)
    status = int(fault.status or 500)
    hdrs = []
    if fault.retry_after is not None:
        ra = fault.retry_after
        hdrs.append((b"retry-after", (str(int(ra)) if float(ra).is_integer() else str(ra)).encode()))
    text = "Too many requests." if status == 429 else "Internal server error."
    await send_error(send, status, f"{text} (injected fault)", status, hdrs)


async def _latency(app: ASGIApp, fault: FaultRule, scope: Scope, receive: Receive, send: Send, _: Transport) -> None:
    # Slow processing, not a slow network: the request is read in full first, so a client that gives
    # up during the delay does not stop the server from acting on it (a create still commits).
    received: list[Message] = []
    while True:
        msg = await receive()
        received.append(msg)
        if msg["type"] != "http.request" or not msg.get("more_body"):
            break
    await asyncio.sleep(fault.delay if fault.delay is not None else 1.0)

    async def replay() -> Message:
        return received.pop(0) if received else await receive()

    await app(scope, replay, send)


async def _reset(
    app: ASGIApp, fault: FaultRule, scope: Scope, receive: Receive, send: Send, transport: Transport
) -> None:
    await drain(receive)
    await abort(transport)


async def _drop_after_commit(
    app: ASGIApp, fault: FaultRule, scope: Scope, receive: Receive, send: Send, transport: Transport
) -> None:
    async def discard(message: Message) -> None:
        return None

    await app(scope, receive, discard)
    await abort(transport)


async def _hold_after_commit(
    app: ASGIApp, fault: FaultRule, scope: Scope, receive: Receive, send: Send, _: Transport
) -> None:
    # Processed and committed now, answered only after ``delay``: the window in which a client that
    # dies (a SIGKILLed worker) has paid or ordered without knowing it.
    held: list[Message] = []

    async def holding_send(message: Message) -> None:
        held.append(message)

    await app(scope, receive, holding_send)
    await asyncio.sleep(fault.delay if fault.delay is not None else 1.0)
    for message in held:
        await send(message)


async def _truncate(
    app: ASGIApp, fault: FaultRule, scope: Scope, receive: Receive, send: Send, transport: Transport
) -> None:
    state: dict[str, Any] = {"length": None, "sent": 0, "dead": False}

    async def cutting_send(message: Message) -> None:
        if state["dead"]:
            return
        if message["type"] == "http.response.start":
            for k, v in message.get("headers", []):
                if k.lower() == b"content-length":
                    state["length"] = int(v)
            await send(message)
            return
        if message["type"] != "http.response.body":
            await send(message)
            return
        length = state["length"] or 2
        limit = fault.bytes if fault.bytes is not None else length // 2
        body = bytes(message.get("body", b""))
        room = max(0, limit - state["sent"])
        if len(body) < room and message.get("more_body"):
            state["sent"] += len(body)
            await send(message)
            return
        if room:
            await send({"type": "http.response.body", "body": body[:room], "more_body": True})
        state["dead"] = True
        await abort(transport)

    await app(scope, receive, cutting_send)


async def _trickle(app: ASGIApp, fault: FaultRule, scope: Scope, receive: Receive, send: Send, _: Transport) -> None:
    chunk = max(1, fault.chunk or 16)
    delay = fault.delay if fault.delay is not None else 0.05

    async def trickling_send(message: Message) -> None:
        if message["type"] != "http.response.body":
            await send(message)
            return
        body = bytes(message.get("body", b""))
        more = bool(message.get("more_body"))
        if not body:
            await send(message)
            return
        for i in range(0, len(body), chunk):
            last = i + chunk >= len(body)
            await send({"type": "http.response.body", "body": body[i : i + chunk], "more_body": more or not last})
            if not last or more:
                await asyncio.sleep(delay)

    await app(scope, receive, trickling_send)


_BY_KIND: dict[str, Callable[[ASGIApp, FaultRule, Scope, Receive, Send, Transport], Awaitable[None]]] = {
    "status": _status,
    "latency": _latency,
    "reset": _reset,
    "drop_after_commit": _drop_after_commit,
    "hold_after_commit": _hold_after_commit,
    "truncate": _truncate,
    "trickle": _trickle,
}
