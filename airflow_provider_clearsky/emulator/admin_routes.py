"""The emulator's own routes under ``/_emulator``: clock, orders, accounts, request log, charges,
concurrency, faults, reset, and the dashboard pages. The gateway guards them (``admin``, ``admin_token``)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from . import errors
from .errors import validation_error
from .messages import ok

if TYPE_CHECKING:
    from .control import Control
    from .emulator import Emulator


def add_admin_routes(app: FastAPI, emulator: Emulator) -> None:
    from .control import Control
    from .dashboard import add_dashboard_routes

    control = Control(emulator)
    add_dashboard_routes(app, control)
    _add_clock_routes(app, emulator, control)
    _add_state_routes(app, emulator, control)
    # Reads: GET answers what the function returns. Actions: the function runs, the answer's Data is null.
    reads: dict[str, Callable[[], Any]] = {
        "/_emulator/orders": control.orders,
        "/_emulator/accounts": lambda: [control.account(k) for k in list(emulator.store.accounts)],
        "/_emulator/requests": control.request_log,
        "/_emulator/charges": control.charges,
        "/_emulator/concurrency": lambda: {"PeakInFlight": control.peak_concurrency(), "InFlight": control.in_flight()},
        "/_emulator/faults": control.faults,
    }
    for path, read in reads.items():
        app.add_api_route(path, _answering(read), methods=["GET"])
    actions: list[tuple[str, str, Callable[[], None]]] = [
        ("DELETE", "/_emulator/concurrency", control.reset_peak_concurrency),
        ("DELETE", "/_emulator/faults", control.clear_faults),
        ("POST", "/_emulator/reset", control.reset),
    ]
    for method, path, action in actions:
        app.add_api_route(path, _answering(action), methods=[method])


def _answering(call: Callable[[], Any]) -> Callable[[], Awaitable[JSONResponse]]:
    async def endpoint() -> JSONResponse:
        return ok(call())

    return endpoint


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise validation_error({"$": ["expected a JSON object"]})
    return data


def _add_clock_routes(app: FastAPI, emulator: Emulator, control: Control) -> None:
    @app.get("/_emulator/clock")
    async def clock_get() -> JSONResponse:
        return ok({"Now": control.now().isoformat(), "Speed": emulator.clock.speed})

    @app.post("/_emulator/clock")
    async def clock_post(request: Request) -> JSONResponse:
        data = await _json(request)
        if "speed" in data:
            control.set_speed(float(data["speed"]))
        if "set" in data:
            control.set_time(datetime.fromisoformat(str(data["set"]).replace("Z", "+00:00")))
        adv = data.get("advance")
        if isinstance(adv, dict):
            control.advance(**{k: float(v) for k, v in adv.items() if k in ("days", "hours", "minutes", "seconds")})
        return ok({"Now": control.now().isoformat(), "Speed": emulator.clock.speed})


def _add_state_routes(app: FastAPI, emulator: Emulator, control: Control) -> None:
    @app.get("/_emulator/orders/{guid}")
    async def admin_order(guid: str) -> JSONResponse:
        """One order: the target of the "ClearSKY order" extra link when a connection's ``dashboard_url`` is
        ``<emulator>/_emulator`` (the demo sets that)."""
        try:
            return ok(control.order(guid))
        except KeyError:
            raise errors.not_found(f"Unknown order '{guid}'.") from None

    @app.post("/_emulator/accounts")
    async def admin_account_upsert(request: Request) -> JSONResponse:
        data = await _json(request)
        key = str(data.pop("key"))
        if key in emulator.store.accounts:
            control.update_account(key, **data)
        else:
            control.add_account(key, **data)
        return ok(control.account(key))

    @app.post("/_emulator/faults")
    async def faults_post(request: Request) -> JSONResponse:
        data = await _json(request)
        try:
            rule = control.add_fault_spec(str(data["spec"])) if "spec" in data else control.add_fault(**data)
        except (TypeError, ValueError) as exc:
            raise validation_error({"spec": [str(exc)]}) from exc
        return ok(rule)
