"""The FastAPI application and the pure-ASGI layer in front of it.

The ASGI layer (``EmulatorASGI``) lower-cases paths (routes are case-insensitive like the ASP.NET service),
logs each request with the key and sensitive query values redacted, enforces ``x-api-key`` (401) and the
per-key ``MaxConcurrentConnections`` (429, or 400/1003), and injects faults. Faults that must really drop
the TCP connection use the uvicorn transport behind ``send`` (see ``_transport_of``), set ``SO_LINGER`` 0
and abort it, so the client sees a connection reset / remote protocol error and never a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import socket
import struct
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import errors, geo, grid
from .errors import ApiError, validation_error
from .faults import FaultRule
from .schemas import (
    AoiBody,
    DetailsBody,
    DownloadBody,
    OrderBody,
    SearchAvailableBody,
    TileSearchBody,
    _Body,
)

if TYPE_CHECKING:
    from .emulator import Emulator

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
B = TypeVar("B", bound=_Body)

log = logging.getLogger("clearsky_emulator.access")
_SENSITIVE = ("url", "key", "token", "sig", "secret", "credential", "password")


# --------------------------------------------------------------------------- envelopes


def service_result(data: Any) -> dict[str, Any]:
    return {"Succeeded": True, "Error": None, "Data": data}


def ok(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(service_result(data), status_code=status)


def error_response(exc: ApiError) -> JSONResponse:
    body = {"Succeeded": False, "Error": {"Message": exc.message, "Code": exc.code}, "Data": exc.data}
    return JSONResponse(body, status_code=exc.status)


def problem_details(errs: dict[str, list[str]]) -> JSONResponse:
    """ASP.NET model-binding failure (unparsable JSON or a wrong JSON type)."""
    body = {
        "type": "https://tools.ietf.org/html/rfc9110#section-15.5.1",
        "title": "One or more validation errors occurred.",
        "status": 400,
        "errors": errs,
        "traceId": f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-00",
    }
    return JSONResponse(body, status_code=400, media_type="application/problem+json")


class _ProblemDetails(Exception):
    def __init__(self, errs: dict[str, list[str]]) -> None:
        super().__init__("problem details")
        self.errors = errs


async def parse_body(request: Request, model: type[B]) -> B:
    raw = await request.body()
    if not raw.strip():
        raise _ProblemDetails({"": ["A non-empty request body is required."]})
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _ProblemDetails({"$": [f"The JSON value could not be parsed: {exc}"]}) from exc
    if not isinstance(data, dict):
        raise _ProblemDetails({"$": ["The JSON value could not be converted to a request object."]})
    try:
        return model.model_validate(model.normalise_keys(data))
    except ValidationError as exc:
        errs: dict[str, list[str]] = {}
        for e in exc.errors():
            loc = "$." + ".".join(str(p) for p in e["loc"])
            errs.setdefault(loc, []).append(f"The JSON value could not be converted: {e['msg']}")
        raise _ProblemDetails(errs) from exc


def query(request: Request) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in request.query_params.multi_items():
        out.setdefault(k.lower(), []).append(v)
    return out


def query_bool(q: dict[str, list[str]], name: str) -> bool:
    values = q.get(name.lower())
    if not values:
        return False
    v = values[-1].strip().lower()
    if v in ("true", "1"):
        return True
    if v in ("false", "0", ""):
        return False
    raise _ProblemDetails({name: [f"The value '{values[-1]}' is not valid."]})


def api_key_of(request: Request) -> str:
    return str(request.scope["clearsky.api_key"])


def redact_key(key: str | None) -> str | None:
    if not key:
        return None
    return key[:4] + "***"


def redact_query(qs: str) -> str:
    if not qs:
        return ""
    pairs = parse_qsl(qs, keep_blank_values=True)
    return urlencode([(k, "REDACTED" if any(s in k.lower() for s in _SENSITIVE) else v) for k, v in pairs])


# --------------------------------------------------------------------------- ASGI layer


def _transport_of(send: Send) -> asyncio.Transport | None:
    """uvicorn's ``send`` is a bound method of its RequestResponseCycle, which holds the transport."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    # uvloop transports are not asyncio.BaseTransport subclasses: duck-type.
    if transport is not None and hasattr(transport, "abort") and hasattr(transport, "get_extra_info"):
        return transport  # type: ignore[no-any-return]
    return None


async def _abort(transport: asyncio.Transport | None) -> None:
    if transport is None:
        raise RuntimeError("cannot drop the connection: server transport not reachable")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    for _ in range(3):
        await asyncio.sleep(0)


async def _drain(receive: Receive) -> None:
    while True:
        msg = await receive()
        if msg["type"] != "http.request" or not msg.get("more_body"):
            return


async def _send_json(
    send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    raw = json.dumps(body).encode()
    hdrs = [(b"content-type", b"application/json; charset=utf-8"), (b"content-length", str(len(raw)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": hdrs + (headers or [])})
    await send({"type": "http.response.body", "body": raw})


def _declared_length(start: Message) -> int:
    """The Content-Length of an ``http.response.start`` message, or -1 when it declares none."""
    for name, value in start.get("headers", []):
        if name.lower() == b"content-length" and value.isdigit():
            return int(value)
    return -1


class EmulatorASGI:
    def __init__(self, emulator: Emulator, app: ASGIApp) -> None:
        self.emulator = emulator
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        transport = _transport_of(send)
        path = scope["path"].lower().rstrip("/") or "/"
        scope = dict(scope, path=path, raw_path=path.encode())
        method = scope["method"].upper()
        if path.startswith("/_emulator"):
            await self._admin(scope, receive, send)
            return
        status_box = [0]

        logged = [False]
        admitted = [False]  # counted in flight: released when the answer's last byte leaves, or when it ends

        def release() -> None:
            if admitted[0] and key is not None:
                admitted[0] = False
                with emu.inflight_lock:
                    emu.inflight[key] -= 1

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
            emu.log_request(entry)
            if emu.config.access_log:
                q = f"?{entry['query']}" if entry["query"] else ""
                log.info('"%s %s%s" %s key=%s', method, path, q, status_box[0] or "-", entry["key"])

        body_left = [-1]  # bytes of the declared Content-Length not yet sent; -1 when none was declared

        async def logging_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_box[0] = int(message["status"])
                body_left[0] = _declared_length(message)
            elif message["type"] == "http.response.body":
                if body_left[0] > 0:
                    body_left[0] = max(0, body_left[0] - len(message.get("body", b"")))
                if body_left[0] == 0 or not message.get("more_body", False):
                    # The client has its whole answer once the declared length is sent, even if the app's
                    # closing empty message comes later: it may send its next request at once.
                    record()
                    release()
            await send(message)

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
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
                await _send_json(
                    logging_send,
                    401,
                    {
                        "Succeeded": False,
                        "Error": {"Message": "API key is missing or unknown (send x-api-key).", "Code": 401},
                        "Data": None,
                    },
                )
                return
            scope["clearsky.api_key"] = key
            with emu.inflight_lock:
                busy = emu.inflight[key] >= acct.config.max_concurrent_connections
                if not busy:
                    emu.inflight[key] += 1
                    emu.peak_inflight[key] = max(emu.peak_inflight[key], emu.inflight[key])
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
                    await self._fault(fault, scope, receive, logging_send, transport)
            finally:
                release()
        finally:
            record()  # an answer cut short, or none at all, is logged too

    async def _concurrency_error(self, send: Send, limit: int) -> None:
        cfg = self.emulator.config
        msg = f"Max concurrent requests reached (MaxConcurrentConnections = {limit})."
        if cfg.concurrency_error == 1003:
            await _send_json(
                send, 400, {"Succeeded": False, "Error": {"Message": msg, "Code": errors.CONCURRENCY}, "Data": None}
            )
            return
        hdrs = []
        if cfg.concurrency_retry_after is not None:
            hdrs.append((b"retry-after", str(cfg.concurrency_retry_after).encode()))
        await _send_json(send, 429, {"Succeeded": False, "Error": {"Message": msg, "Code": 429}, "Data": None}, hdrs)

    async def _fault(
        self, fault: FaultRule, scope: Scope, receive: Receive, send: Send, transport: asyncio.Transport | None
    ) -> None:
        kind = fault.kind
        if kind == "status":
            await _drain(receive)
            status = int(fault.status or 500)
            hdrs = []
            if fault.retry_after is not None:
                ra = fault.retry_after
                hdrs.append((b"retry-after", (str(int(ra)) if float(ra).is_integer() else str(ra)).encode()))
            text = "Too many requests." if status == 429 else "Internal server error."
            await _send_json(
                send,
                status,
                {"Succeeded": False, "Error": {"Message": f"{text} (injected fault)", "Code": status}, "Data": None},
                hdrs,
            )
            return
        if kind == "latency":
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

            await self.app(scope, replay, send)
            return
        if kind == "reset":
            await _drain(receive)
            await _abort(transport)
            return
        if kind == "drop_after_commit":

            async def discard(message: Message) -> None:
                return None

            await self.app(scope, receive, discard)
            await _abort(transport)
            return
        if kind == "hold_after_commit":
            # Processed and committed now, answered only after ``delay``: the window in which a client that
            # dies (a SIGKILLed worker) has paid or ordered without knowing it.
            held: list[Message] = []

            async def holding_send(message: Message) -> None:
                held.append(message)

            await self.app(scope, receive, holding_send)
            await asyncio.sleep(fault.delay if fault.delay is not None else 1.0)
            for message in held:
                await send(message)
            return
        if kind == "truncate":
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
                await _abort(transport)

            await self.app(scope, receive, cutting_send)
            return
        if kind == "trickle":
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
                    await send(
                        {"type": "http.response.body", "body": body[i : i + chunk], "more_body": more or not last}
                    )
                    if not last or more:
                        await asyncio.sleep(delay)

            await self.app(scope, receive, trickling_send)
            return
        raise AssertionError(kind)

    async def _admin(self, scope: Scope, receive: Receive, send: Send) -> None:
        cfg = self.emulator.config
        if not cfg.admin:
            await _send_json(
                send, 404, {"Succeeded": False, "Error": {"Message": "Not found.", "Code": 404}, "Data": None}
            )
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if cfg.admin_token is not None:
            allowed = hmac.compare_digest(headers.get("x-admin-token", ""), cfg.admin_token)
        else:
            client = scope.get("client") or ("", 0)
            allowed = client[0] in ("127.0.0.1", "::1", "localhost")
        if not allowed:
            await _send_json(
                send,
                401,
                {
                    "Succeeded": False,
                    "Error": {"Message": "Admin token required (x-admin-token).", "Code": 401},
                    "Data": None,
                },
            )
            return
        await self.app(scope, receive, send)


# --------------------------------------------------------------------------- the FastAPI app


def build_app(emulator: Emulator) -> EmulatorASGI:
    app = FastAPI(title="ClearSKY API emulator", docs_url=None, redoc_url=None, openapi_url=None)
    store = emulator.store

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(_ProblemDetails)
    async def _pd(request: Request, exc: _ProblemDetails) -> JSONResponse:
        return problem_details(exc.errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        msg = "Not found." if exc.status_code == 404 else str(exc.detail)
        return error_response(ApiError(exc.status_code, exc.status_code, msg))

    def now() -> Any:
        return emulator.now()

    # ---- account
    @app.get("/api/account/info")
    @app.get("/api/apikey/info")
    async def account_info(request: Request) -> JSONResponse:
        return ok(store.account_info(api_key_of(request), now()))

    # ---- catalogue
    @app.get("/api/tasking/models")
    async def models(request: Request) -> JSONResponse:
        from .catalogue import MODELS

        out = []
        for m in MODELS.values():
            sats = [{"SatelliteConstellation": c, "Optional": False} for c in m.required]
            sats += [{"SatelliteConstellation": c, "Optional": True} for c in m.optional]
            out.append({"Model": m.name, "SupportedSatelliteConstellations": sats})
        return ok({"TaskingModels": out})

    @app.post("/api/tasking/search/tiles")
    async def search_tiles(request: Request) -> JSONResponse:
        body = await parse_body(request, TileSearchBody)
        return ok(_search_tiles(body))

    @app.post("/api/tasking/tile/optimize")
    async def optimize(request: Request) -> JSONResponse:
        body = await parse_body(request, AoiBody)
        return ok(_optimize(body))

    # ---- orders
    @app.post("/api/tasking/orders/estimate")
    @app.post("/api/satelliteimages/process/tasking/orders/estimate")
    async def estimate(request: Request) -> JSONResponse:
        body = await parse_body(request, OrderBody)
        return ok(store.estimate(api_key_of(request), body, now()))

    @app.post("/api/tasking/orders")
    @app.post("/api/satelliteimages/process/tasking/orders")
    async def create(request: Request) -> JSONResponse:
        body = await parse_body(request, OrderBody)
        q = query(request)
        auto_values = q.get("automaticorderguid")
        auto = auto_values[-1] if auto_values else None
        return ok(store.create(api_key_of(request), body, now(), auto))

    @app.get("/api/tasking/orders")
    @app.get("/api/satelliteimages/process/tasking/orders")
    async def list_orders(request: Request) -> JSONResponse:
        q = query(request)
        orders = store.list_orders(
            api_key_of(request), now(), query_bool(q, "recurringOnly"), query_bool(q, "getExpired")
        )
        return ok({"TaskOrders": orders})

    def details_method_allowed(method: str) -> bool:
        served = emulator.config.order_details_methods
        return served == "both" or served == method

    @app.post("/api/tasking/orders/details", response_model=None)
    async def details_post(request: Request) -> Response:
        if not details_method_allowed("post"):
            return Response(status_code=405, headers={"Allow": "GET"})
        body = await parse_body(request, DetailsBody)
        if not body.Guids:
            raise validation_error({"Guids": ["'Guids' must not be empty."]})
        return ok({"TaskOrders": store.details(api_key_of(request), body.Guids, now())})

    @app.get("/api/tasking/orders/details", response_model=None)
    async def details_get(request: Request) -> Response:
        if not details_method_allowed("get"):
            return Response(status_code=405, headers={"Allow": "POST"})
        q = query(request)
        guids = [g.strip() for v in q.get("guids", []) + q.get("guid", []) for g in v.split(",") if g.strip()]
        if not guids:
            raise validation_error({"guids": ["At least one 'guids' query parameter is required."]})
        return ok({"TaskOrders": store.details(api_key_of(request), guids, now())})

    @app.delete("/api/tasking/orders/cancel")
    async def cancel(request: Request) -> JSONResponse:
        q = query(request)
        guid_values = q.get("taskorderguid")
        guid = guid_values[-1] if guid_values else None
        return ok(store.cancel(api_key_of(request), guid, now()))

    # ---- availability
    @app.post("/api/satelliteimages/search/available")
    async def search_available(request: Request) -> JSONResponse:
        body = await parse_body(request, SearchAvailableBody)
        aoi = _aoi(body)
        if body.From is None:
            raise validation_error({"From": ["'From' must not be empty."]})
        return ok(store.search_available(api_key_of(request), aoi, body.From, body.Until, now()))

    @app.post("/api/satelliteimages/process/composite/available")
    async def composite_available(request: Request) -> JSONResponse:
        body = await parse_body(request, DownloadBody)
        return ok(store.composite_available(api_key_of(request), body, now()))

    @app.post("/api/satelliteimages/process/composite/estimate")
    async def composite_estimate(request: Request) -> JSONResponse:
        body = await parse_body(request, DownloadBody)
        return ok(store.composite_estimate(api_key_of(request), body, now()))

    async def _download(request: Request, kind: str) -> Response:
        body = await parse_body(request, DownloadBody)
        plan = store.prepare_download(api_key_of(request), body, kind, now())
        stream = plan.stream
        if plan.upload_url:
            await _upload(plan.upload_url, stream)
            return Response(status_code=201)
        headers = {
            "Content-Length": str(stream.size),
            "Content-Disposition": f'attachment; filename="{plan.filename}"',
        }
        return StreamingResponse(stream.aiter_strips(), media_type="application/octet-stream", headers=headers)

    @app.post("/api/satelliteimages/process/composite")
    async def composite(request: Request) -> Response:
        return await _download(request, "composite")

    @app.post("/api/satelliteimages/process/tile")
    async def tile(request: Request) -> Response:
        return await _download(request, "tile")

    @app.post("/api/satelliteimages/process/minitile")
    async def minitile(request: Request) -> Response:
        return await _download(request, "minitile")

    _admin_routes(app, emulator)
    return EmulatorASGI(emulator, app)


async def _upload(url: str, stream: Any) -> None:
    """PUT the file to the caller's URL. The URL is never logged or echoed (it may be signed).

    httpcore rather than httpx: httpx logs every request's full URL at INFO level, signature included.
    """
    import httpcore

    headers = [(b"Content-Length", str(stream.size).encode()), (b"Content-Type", b"application/octet-stream")]
    try:
        async with httpcore.AsyncConnectionPool() as pool:
            response = await pool.request(
                "PUT", url, headers=headers, content=stream.aiter_strips(), extensions={"timeout": {"read": 120.0}}
            )
    except (
        httpcore.TimeoutException,
        httpcore.NetworkError,
        httpcore.ProtocolError,
        httpcore.UnsupportedProtocol,
    ) as exc:
        raise ApiError(400, errors.DOMAIN_RULE, f"Upload to UploadUrl failed: {type(exc).__name__}.") from exc
    if response.status >= 300:
        raise ApiError(400, errors.DOMAIN_RULE, f"Upload to UploadUrl failed with HTTP {response.status}.")


def _aoi(body: AoiBody) -> Any:
    if (body.Wkt is None) == (body.GeoJson is None):
        raise validation_error({"Wkt": ["Specify exactly one of Wkt or GeoJson."]})
    try:
        return geo.download_aoi(geo.parse_geometry(body.Wkt, body.GeoJson))
    except geo.GeometryError as exc:
        raise validation_error({"Wkt" if body.Wkt is not None else "GeoJson": [str(exc)]}) from exc


def _tile_entry(cell: grid.Cell) -> dict[str, Any]:
    return {
        "Guid": cell.guid,
        "MiniTile": cell.is_mini,
        "Epsg": str(cell.epsg),
        "DataGeogWkt": geo.to_wkt(cell.geometry),
    }


def _cells(guids: list[str], mini: bool, fieldname: str) -> list[grid.Cell]:
    out = []
    for g in guids:
        cell = grid.parse_guid(g)
        if cell is None or cell.is_mini != mini:
            raise errors.not_found(
                f"Unknown {'minitile' if mini else 'tile'} '{g}'.", {fieldname: [f"Unknown GUID '{g}'."]}
            )
        out.append(cell)
    return out


def _search_tiles(body: TileSearchBody) -> dict[str, Any]:
    modes = [
        body.Wkt is not None,
        body.GeoJson is not None,
        bool(body.TileGuids),
        bool(body.MiniTileGuids),
        body.TileGuidForMiniTiles is not None,
    ]
    if sum(modes) != 1:
        raise validation_error(
            {"Wkt": ["Specify exactly one of Wkt, GeoJson, TileGuids, MiniTileGuids or TileGuidForMiniTiles."]}
        )
    if body.TileGuids:
        return {"Tiles": [_tile_entry(c) for c in _cells(body.TileGuids, False, "TileGuids")]}
    if body.MiniTileGuids:
        return {"Tiles": [_tile_entry(c) for c in _cells(body.MiniTileGuids, True, "MiniTileGuids")]}
    if body.TileGuidForMiniTiles is not None:
        tile = _cells([body.TileGuidForMiniTiles], False, "TileGuidForMiniTiles")[0]
        minis = tile.minitiles()
        # CONFLICT 6: both shapes - Tiles entries with MiniTile=true and a MiniTiles GUID list.
        return {"Tiles": [_tile_entry(c) for c in minis], "MiniTiles": [c.guid for c in minis]}
    aoi = _aoi(body)
    try:
        tiles = grid.tiles_intersecting(aoi)
    except ValueError as exc:
        raise validation_error({"Wkt": [str(exc)]}) from exc
    # The 2025 client and its example read tiles and minitiles from one list, told apart by ``MiniTile``.
    minis = [cell for tile in tiles for cell, _ in grid.minitiles_intersecting(tile, aoi)]
    return {"Tiles": [_tile_entry(c) for c in tiles] + [_tile_entry(c) for c in minis]}


def _optimize(body: AoiBody) -> dict[str, Any]:
    """Best-effort cheapest covering: a whole tile when more than 40 % of it is needed, otherwise every
    minitile the AOI touches (so the covering is complete)."""
    aoi = _aoi(body)
    try:
        tiles = grid.tiles_intersecting(aoi)
    except ValueError as exc:
        raise validation_error({"Wkt": [str(exc)]}) from exc
    out_tiles: list[str] = []
    out_minis: list[str] = []
    for t in tiles:
        frac = t.geometry.intersection(aoi).area / t.geometry.area
        if frac > 0.4:
            out_tiles.append(t.guid)
        else:
            out_minis.extend(c.guid for c, _ in grid.minitiles_intersecting(t, aoi))
    return {"Tiles": out_tiles, "MiniTiles": out_minis}


# --------------------------------------------------------------------------- admin routes


def _admin_routes(app: FastAPI, emulator: Emulator) -> None:
    from .control import Control
    from .dashboard import add_dashboard_routes

    control = Control(emulator)
    add_dashboard_routes(app, control)

    async def _json(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if not raw.strip():
            return {}
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise validation_error({"$": ["expected a JSON object"]})
        return data

    @app.get("/_emulator/clock")
    async def clock_get() -> JSONResponse:
        return ok({"Now": control.now().isoformat(), "Speed": emulator.clock.speed})

    @app.post("/_emulator/clock")
    async def clock_post(request: Request) -> JSONResponse:
        data = await _json(request)
        if "speed" in data:
            control.set_speed(float(data["speed"]))
        if "set" in data:
            from datetime import datetime

            control.set_time(datetime.fromisoformat(str(data["set"]).replace("Z", "+00:00")))
        adv = data.get("advance")
        if isinstance(adv, dict):
            control.advance(**{k: float(v) for k, v in adv.items() if k in ("days", "hours", "minutes", "seconds")})
        return ok({"Now": control.now().isoformat(), "Speed": emulator.clock.speed})

    @app.get("/_emulator/orders")
    async def admin_orders() -> JSONResponse:
        return ok(control.orders())

    @app.get("/_emulator/orders/{guid}")
    async def admin_order(guid: str) -> JSONResponse:
        """One order: the target of the "ClearSKY order" extra link when a connection's ``dashboard_url`` is
        ``<emulator>/_emulator`` (the demo sets that)."""
        try:
            return ok(control.order(guid))
        except KeyError:
            raise errors.not_found(f"Unknown order '{guid}'.") from None

    @app.get("/_emulator/accounts")
    async def admin_accounts() -> JSONResponse:
        return ok([control.account(k) for k in list(emulator.store.accounts)])

    @app.post("/_emulator/accounts")
    async def admin_account_upsert(request: Request) -> JSONResponse:
        data = await _json(request)
        key = str(data.pop("key"))
        if key in emulator.store.accounts:
            control.update_account(key, **data)
        else:
            control.add_account(key, **data)
        return ok(control.account(key))

    @app.get("/_emulator/requests")
    async def admin_requests() -> JSONResponse:
        return ok(control.request_log())

    @app.get("/_emulator/charges")
    async def admin_charges() -> JSONResponse:
        return ok(control.charges())

    @app.get("/_emulator/concurrency")
    async def concurrency_get() -> JSONResponse:
        return ok({"PeakInFlight": control.peak_concurrency(), "InFlight": control.in_flight()})

    @app.delete("/_emulator/concurrency")
    async def concurrency_delete() -> JSONResponse:
        control.reset_peak_concurrency()
        return ok(None)

    @app.get("/_emulator/faults")
    async def faults_get() -> JSONResponse:
        return ok(control.faults())

    @app.post("/_emulator/faults")
    async def faults_post(request: Request) -> JSONResponse:
        data = await _json(request)
        try:
            rule = control.add_fault_spec(str(data["spec"])) if "spec" in data else control.add_fault(**data)
        except (TypeError, ValueError) as exc:
            raise validation_error({"spec": [str(exc)]}) from exc
        return ok(rule)

    @app.delete("/_emulator/faults")
    async def faults_delete() -> JSONResponse:
        control.clear_faults()
        return ok(None)

    @app.post("/_emulator/reset")
    async def reset() -> JSONResponse:
        control.reset()
        return ok(None)
