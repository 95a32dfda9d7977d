"""What the service's requests carry and its answers look like: the ``ServiceResult`` envelope, ASP.NET
problem details, and reading a request's JSON body, query and API key."""

from __future__ import annotations

import json
import uuid
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from .errors import ApiError
from .schemas import _Body

B = TypeVar("B", bound=_Body)


def service_result(data: Any) -> dict[str, Any]:
    return {"Succeeded": True, "Error": None, "Data": data}


def error_result(message: str, code: int, data: Any = None) -> dict[str, Any]:
    return {"Succeeded": False, "Error": {"Message": message, "Code": code}, "Data": data}


def ok(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(service_result(data), status_code=status)


def error_response(exc: ApiError) -> JSONResponse:
    return JSONResponse(error_result(exc.message, exc.code, exc.data), status_code=exc.status)


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


class ProblemDetailsError(Exception):
    def __init__(self, errs: dict[str, list[str]]) -> None:
        super().__init__("problem details")
        self.errors = errs


async def parse_body(request: Request, model: type[B]) -> B:
    raw = await request.body()
    if not raw.strip():
        raise ProblemDetailsError({"": ["A non-empty request body is required."]})
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProblemDetailsError({"$": [f"The JSON value could not be parsed: {exc}"]}) from exc
    if not isinstance(data, dict):
        raise ProblemDetailsError({"$": ["The JSON value could not be converted to a request object."]})
    try:
        return model.model_validate(model.normalise_keys(data))
    except ValidationError as exc:
        errs: dict[str, list[str]] = {}
        for e in exc.errors():
            loc = "$." + ".".join(str(p) for p in e["loc"])
            errs.setdefault(loc, []).append(f"The JSON value could not be converted: {e['msg']}")
        raise ProblemDetailsError(errs) from exc


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
    raise ProblemDetailsError({name: [f"The value '{values[-1]}' is not valid."]})


def api_key_of(request: Request) -> str:
    return str(request.scope["clearsky.api_key"])
