"""The FastAPI application of the emulator, behind its ASGI gateway.

The parts: ``gateway`` (path case, authentication, concurrency limit, request log, fault injection),
``api_routes`` (the ClearSKY API), ``admin_routes`` (``/_emulator``), ``messages`` (envelopes, body and query
parsing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .admin_routes import add_admin_routes
from .api_routes import add_api_routes
from .errors import ApiError
from .gateway import EmulatorASGI
from .messages import ProblemDetailsError, error_response, problem_details

if TYPE_CHECKING:
    from .emulator import Emulator


def build_app(emulator: Emulator) -> EmulatorASGI:
    app = FastAPI(title="ClearSKY API emulator", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(ProblemDetailsError)
    async def _pd(request: Request, exc: ProblemDetailsError) -> JSONResponse:
        return problem_details(exc.errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        msg = "Not found." if exc.status_code == 404 else str(exc.detail)
        return error_response(ApiError(exc.status_code, exc.status_code, msg))

    add_api_routes(app, emulator)
    add_admin_routes(app, emulator)
    return EmulatorASGI(emulator, app)


__all__ = ["EmulatorASGI", "build_app"]
