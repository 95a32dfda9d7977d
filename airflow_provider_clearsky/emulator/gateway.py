"""The ASGI gateway in front of the FastAPI app: what the real service does before and around its handlers.

``EmulatorASGI`` lower-cases paths (routes are case-insensitive like the ASP.NET service), logs each request
with the key and sensitive query values redacted, enforces ``x-api-key`` (401) and the per-key
``MaxConcurrentConnections`` (429, or 400/1003), guards the admin routes, and injects faults
(``fault_injection``).
"""

from __future__ import annotations

import hmac
import logging
import time
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode

from . import errors
from .asgi import ASGIApp, Message, Receive, Scope, Send, declared_length, send_error, transport_of
from .fault_injection import inject_fault

if TYPE_CHECKING:
    from .emulator import Emulator

log = logging.getLogger("clearsky_emulator.access")
_SENSITIVE = ("url", "key", "token", "sig", "secret", "credential", "password")


def redact_key(key: str | None) -> str | None:
    if not key:
        return None
    return key[:4] + "***"


def redact_query(qs: str) -> str:
    if not qs:
        return ""
    pairs = parse_qsl(qs, keep_blank_values=True)
    return urlencode([(k, "REDACTED" if any(s in k.lower() for s in _SENSITIVE) else v) for k, v in pairs])


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


class EmulatorASGI:
    def __init__(self, emulator: Emulator, app: ASGIApp) -> None:
        self.emulator = emulator
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        transport = transport_of(send)
        path = scope["path"].lower().rstrip("/") or "/"
        scope = dict(scope, path=path, raw_path=path.encode())
        method = scope["method"].upper()
        if path.startswith("/_emulator"):
            await self._admin(scope, receive, send)
            return
        status_box = [0]

        logged = [False]
        admitted = [False]  # counted in flight: released when the answer's last byte leaves, or when it ends

        held_by: list[str] = []  # for a refused request: what held the key's connections

        def release() -> None:
            if admitted[0] and key is not None:
                admitted[0] = False
                with emu.inflight_lock:
                    emu.inflight[key] -= 1
                    emu.inflight_requests[key].pop(id(scope), None)

        def record() -> None:
            # Logged before the last byte of the answer leaves, so a client that has its answer finds it logged.
            if logged[0] or not path.startswith("/api/"):
                return
            logged[0] = True
            entry = {
                "time": emu.now().isoformat(),
                "method": method,
                "path": path,
                "query": redact_query(scope.get("query_string", b"").decode("latin-1")),
                "status": status_box[0],
                "key": redact_key(key),
            }
            if held_by:
                entry["held_by"] = held_by
            emu.log_request(entry)
            if emu.config.access_log:
                q = f"?{entry['query']}" if entry["query"] else ""
                log.info('"%s %s%s" %s key=%s', method, path, q, status_box[0] or "-", entry["key"])

        body_left = [-1]  # bytes of the declared Content-Length not yet sent; -1 when none was declared

        async def logging_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_box[0] = int(message["status"])
                body_left[0] = declared_length(message)
            elif message["type"] == "http.response.body":
                if body_left[0] > 0:
                    body_left[0] = max(0, body_left[0] - len(message.get("body", b"")))
                if body_left[0] == 0 or not message.get("more_body", False):
                    # The client has its whole answer once the declared length is sent, even if the app's
                    # closing empty message comes later: it may send its next request at once.
                    record()
                    release()
            await send(message)

        headers = _headers(scope)
        key = headers.get("x-api-key")
        if not key and self.emulator.config.accept_bearer:
            auth = headers.get("authorization", "")
            if auth.lower().startswith("bearer "):
                key = auth[7:].strip()
        emu = self.emulator
        try:
            if not path.startswith("/api/"):
                await self.app(scope, receive, logging_send)
                return
            acct = emu.store.account(key)
            if acct is None or key is None:
                await send_error(logging_send, 401, "API key is missing or unknown (send x-api-key).", 401)
                return
            scope["clearsky.api_key"] = key
            with emu.inflight_lock:
                busy = emu.inflight[key] >= acct.config.max_concurrent_connections
                if busy:
                    held_by.extend(emu.inflight_requests[key].values())
                else:
                    emu.inflight[key] += 1
                    emu.peak_inflight[key] = max(emu.peak_inflight[key], emu.inflight[key])
                    client = "{}:{}".format(*(scope.get("client") or ("?", 0)))
                    since = time.strftime("%H:%M:%S", time.gmtime())  # real time, to compare with other logs
                    emu.inflight_requests[key][id(scope)] = f"{method} {path} from {client} since {since} UTC"
                    admitted[0] = True
            if busy:
                await self._concurrency_error(logging_send, acct.config.max_concurrent_connections)
                return
            try:
                fault = emu.faults.take(method, path)
                if fault is not None and fault.advance:
                    emu.clock.advance(timedelta(seconds=fault.advance))
                emu.store.sync(emu.now())
                if fault is None:
                    await self.app(scope, receive, logging_send)
                else:
                    await inject_fault(self.app, fault, scope, receive, logging_send, transport)
            finally:
                release()
        finally:
            record()  # an answer cut short, or none at all, is logged too

    async def _concurrency_error(self, send: Send, limit: int) -> None:
        cfg = self.emulator.config
        msg = f"Max concurrent requests reached (MaxConcurrentConnections = {limit})."
        if cfg.concurrency_error == 1003:
            await send_error(send, 400, msg, errors.CONCURRENCY)
            return
        hdrs = []
        if cfg.concurrency_retry_after is not None:
            hdrs.append((b"retry-after", str(cfg.concurrency_retry_after).encode()))
        await send_error(send, 429, msg, 429, hdrs)

    async def _admin(self, scope: Scope, receive: Receive, send: Send) -> None:
        cfg = self.emulator.config
        if not cfg.admin:
            await send_error(send, 404, "Not found.", 404)
            return
        headers = _headers(scope)
        if cfg.admin_token is not None:
            allowed = hmac.compare_digest(headers.get("x-admin-token", ""), cfg.admin_token)
        else:
            client = scope.get("client") or ("", 0)
            allowed = client[0] in ("127.0.0.1", "::1", "localhost")
        if not allowed:
            await send_error(send, 401, "Admin token required (x-admin-token).", 401)
            return
        await self.app(scope, receive, send)
