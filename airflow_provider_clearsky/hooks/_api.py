"""The request/response layer shared by the sync and async hook methods.

Each endpoint is an :class:`ApiCall` (method, path, body, how to parse ``Data``). Sending differs between
``httpx.Client`` and ``httpx.AsyncClient``; building requests, reading envelopes, mapping errors and
deciding what to retry do not, and live here once.
"""

from __future__ import annotations

import email.utils
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx
import pydantic
import tenacity

from airflow_provider_clearsky.exceptions import (
    ClearSkyApiError,
    ClearSkyError,
    OrderOutcomeUnknownError,
    RateLimitedError,
    ServerError,
    TransportError,
    UnexpectedResponseError,
    error_class_for,
)

T = TypeVar("T")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApiCall(Generic[T]):
    """One request to the API and how to read its answer."""

    method: str
    path: str
    parse: Callable[[Any], T]
    json: Any = None
    params: Mapping[str, str] | None = None
    # A create-order POST: never re-sent once it may have reached the server.
    creates_order: bool = False
    # A download charged in processing units: not re-sent by the hook once it may have been processed (a
    # dropped connection, a read timeout, a body cut short); the task's own retry decides whether to pay again.
    paid: bool = False
    # The 2024 client judges a cancel by its status alone, so an empty 2xx body is its success, not a fault.
    empty_body_ok: bool = False

    @property
    def endpoint(self) -> str:
        """The method and path, as errors and logs name the call (``"GET /api/..."``)."""
        return f"{self.method} {self.path}"

    def build(self, client: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        """Return the request for ``client``, which adds the base URL and the API key."""
        return client.build_request(self.method, self.path, json=self.json, params=self.params)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter on 429, 5xx, connect errors and timeouts; ``Retry-After`` honoured."""

    max_attempts: int = 6
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    retry_after_cap: float = 300.0
    sleep: Callable[[float], Any] | None = field(default=None, compare=False)

    def wait(self, retry_state: tenacity.RetryCallState) -> float:
        """Return the seconds to wait before the next try: the server's ``Retry-After`` (capped), else backoff."""
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            return min(max(error.retry_after, 0.0), self.retry_after_cap)
        backoff = tenacity.wait_exponential_jitter(multiplier=self.backoff_initial, max=self.backoff_max)
        return float(backoff(retry_state))


def is_retryable(call: ApiCall[Any], error: BaseException) -> bool:
    """Tell whether sending ``call`` again is both useful and safe after ``error``."""
    if isinstance(error, RateLimitedError):
        return True  # the server refused the request outright, so it did nothing
    if isinstance(error, TransportError):
        return not error.request_sent or not (call.creates_order or call.paid)
    if isinstance(error, (ServerError, UnexpectedResponseError)):
        # An error answer delivers nothing, so a download is not charged for it; a create may have committed.
        return not call.creates_order
    return False


def retrying_kwargs(policy: RetryPolicy, call: ApiCall[Any], *, asynchronous: bool = False) -> dict[str, Any]:
    """Return the arguments of ``tenacity.Retrying`` (or ``AsyncRetrying`` when ``asynchronous``) for one call."""

    def log_retry(retry_state: tenacity.RetryCallState) -> None:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        delay = retry_state.next_action.sleep if retry_state.next_action else 0.0
        log.warning(
            "ClearSKY %s failed (%s); retry %d of %d in %.1f s",
            call.endpoint,
            error,
            retry_state.attempt_number,
            policy.max_attempts - 1,
            delay,
        )

    kwargs: dict[str, Any] = {
        "stop": tenacity.stop_after_attempt(max(policy.max_attempts, 1)),
        "wait": policy.wait,
        "retry": tenacity.retry_if_exception(lambda error: is_retryable(call, error)),
        "before_sleep": log_retry,
        "reraise": True,
    }
    sleep = policy.sleep
    if sleep is not None and asynchronous:

        async def async_sleep(delay: float) -> None:
            sleep(delay)

        kwargs["sleep"] = async_sleep
    elif sleep is not None:
        kwargs["sleep"] = sleep
    return kwargs


def outcome_unknown(call: ApiCall[Any], error: ClearSkyError) -> ClearSkyError:
    """Return OrderOutcomeUnknownError for a create POST that may have reached the server unanswered, else ``error``."""
    unclear = (ServerError, TransportError, UnexpectedResponseError)
    if call.creates_order and isinstance(error, unclear) and _maybe_processed(error):
        return OrderOutcomeUnknownError(
            f"the order may or may not have been created ({error.message}); look it up before creating again",
            status_code=error.status_code,
            endpoint=call.endpoint,
        )
    return error


def _maybe_processed(error: ClearSkyError) -> bool:
    return not isinstance(error, TransportError) or error.request_sent


def transport_error(call: ApiCall[Any], error: httpx.TransportError) -> TransportError:
    """Return the provider's error for ``error``, noting whether the request may have reached the server."""
    never_connected = isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
    # httpx's own texts name the failure (refused, timed out, peer closed), never the request's headers.
    detail = str(error) or type(error).__name__
    return TransportError(f"{type(error).__name__}: {detail}", request_sent=not never_connected, endpoint=call.endpoint)


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Return ``Retry-After`` as seconds, from either a number or an HTTP date."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(moment.timestamp() - time.time(), 0.0)


def _lower_keys(value: Any) -> Any:
    return {str(k).lower(): v for k, v in value.items()} if isinstance(value, dict) else value


def _field_errors(value: Any) -> dict[str, list[str]]:
    if not isinstance(value, dict):
        return {}
    return {str(k): [str(m) for m in (v if isinstance(v, list) else [v])] for k, v in value.items()}


def _decode(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def api_error(call: ApiCall[Any], response: httpx.Response, body: Any) -> ClearSkyApiError:
    """Map an error answer, in either documented shape, to the provider's exception types."""
    status = response.status_code
    fields = _lower_keys(body) if isinstance(body, dict) else {}
    error_code: int | None = None
    field_errors: dict[str, list[str]] = {}
    if "succeeded" in fields:  # ServiceResult envelope
        error = _lower_keys(fields.get("error")) or {}
        message = str(error.get("message") or "request failed")
        code = error.get("code")
        error_code = int(code) if isinstance(code, (int, float)) or (isinstance(code, str) and code.isdigit()) else None
        field_errors = _field_errors(fields.get("data"))
    elif "errors" in fields or "title" in fields:  # ASP.NET ProblemDetails from model binding
        message = str(fields.get("title") or "request failed")
        field_errors = _field_errors(fields.get("errors"))
        error_code = 992 if status == 400 else None
    else:
        message = response.reason_phrase or f"HTTP {status}"
    error_class = error_class_for(status, error_code)
    common: dict[str, Any] = {
        "status_code": status,
        "error_code": error_code,
        "field_errors": field_errors,
        "endpoint": call.endpoint,
    }
    if error_class is RateLimitedError:
        return RateLimitedError(message, retry_after=retry_after_seconds(response), **common)
    return error_class(message, **common)


def is_page(response: httpx.Response) -> bool:
    """Tell whether the answer is an HTML or plain-text page (a proxy's), never a file the API produced."""
    content_type = response.headers.get("content-type", "").lower()
    return bool(content_type.startswith(("text/html", "text/plain", "application/xhtml")))


def is_json(response: httpx.Response) -> bool:
    """Tell whether ``response`` declares a JSON body (``application/json`` or a ``+json`` type)."""
    return "application/json" in response.headers.get("content-type", "").lower() or "+json" in response.headers.get(
        "content-type", ""
    )


def unexpected_response(call: ApiCall[Any], response: httpx.Response, what: str) -> UnexpectedResponseError:
    """Describe an answer that is not the API's: what came (status, type, first bytes), never what it echoes."""
    content_type = response.headers.get("content-type", "") or "none"
    body = _decode(response)
    if isinstance(body, dict):
        sample = f"JSON keys {sorted(str(key) for key in body)[:8]}"
    elif body is not None:
        sample = f"JSON {type(body).__name__}"
    elif response.content:
        text = response.content[:60].decode("utf-8", errors="replace")
        sample = "body starts " + repr("".join(ch if ch.isprintable() else " " for ch in text))
    else:
        sample = "empty body"
    return UnexpectedResponseError(
        f"{what} (Content-Type {content_type}, {sample}); retry later, or check the connection's host",
        status_code=response.status_code,
        endpoint=call.endpoint,
    )


def _shape_error(error: Exception) -> str:
    """Where ``Data`` did not fit, without the values (which may echo a key)."""
    if isinstance(error, pydantic.ValidationError):
        places = sorted({".".join(str(part) for part in item["loc"]) or "Data" for item in error.errors()})
        return "Data of the wrong shape at " + ", ".join(places[:6])
    return f"Data of the wrong shape ({type(error).__name__})"


def parse_response(call: ApiCall[T], response: httpx.Response) -> T:
    """Read an answer whose body has been loaded: raise on error, else parse ``Data``.

    A success status without the ServiceResult envelope, or whose ``Data`` does not fit, raises
    :class:`UnexpectedResponseError`, never returns empty data.
    """
    body = _decode(response)
    if response.status_code >= 400:
        raise api_error(call, response, body)
    if call.empty_body_ok and not response.content.strip():
        return call.parse(None)
    fields = _lower_keys(body)
    if not (isinstance(fields, dict) and "succeeded" in fields):
        raise unexpected_response(call, response, "the answer is not the API's JSON envelope")
    if not fields["succeeded"]:  # errors may arrive with HTTP 200
        raise api_error(call, response, body)
    try:
        return call.parse(fields.get("data"))
    except (pydantic.ValidationError, ValueError, TypeError, AttributeError) as error:
        raise unexpected_response(call, response, _shape_error(error)) from None


def raise_for_download(call: ApiCall[Any], response: httpx.Response) -> None:
    """Raise the error of a download answer with a loaded JSON body, whatever its status."""
    body = _decode(response)
    if response.status_code >= 400 or (isinstance(_lower_keys(body), dict) and "succeeded" in _lower_keys(body)):
        raise api_error(call, response, body)
    raise unexpected_response(call, response, "expected a file, got neither a file nor the API's envelope")


_FILENAME_STAR = re.compile(r"filename\*\s*=\s*(?:[\w-]+'[^']*')?([^;]+)", re.IGNORECASE)
_FILENAME = re.compile(r'filename\s*=\s*("([^"]*)"|[^;]+)', re.IGNORECASE)


def open_stream(client: httpx.Client, call: ApiCall[Any]) -> httpx.Response:
    """Send ``call`` for a streamed answer; an error answer (status, JSON or page) is read, closed and raised."""
    try:
        response = client.send(call.build(client), stream=True)
    except httpx.TransportError as error:
        raise transport_error(call, error) from error
    if response.status_code >= 400 or is_json(response) or is_page(response):
        try:
            response.read()
        except httpx.TransportError as error:
            raise transport_error(call, error) from error
        finally:
            response.close()
        raise_for_download(call, response)
    return response


async def aopen_stream(client: httpx.AsyncClient, call: ApiCall[Any]) -> httpx.Response:
    """Send ``call`` for a streamed answer (async :func:`open_stream`)."""
    try:
        response = await client.send(call.build(client), stream=True)
    except httpx.TransportError as error:
        raise transport_error(call, error) from error
    if response.status_code >= 400 or is_json(response) or is_page(response):
        try:
            await response.aread()
        except httpx.TransportError as error:
            raise transport_error(call, error) from error
        finally:
            await response.aclose()
        raise_for_download(call, response)
    return response


def filename_from_disposition(header: str | None) -> str | None:
    """Return the file name of a ``Content-Disposition`` header, stripped of any directory part."""
    if not header:
        return None
    from urllib.parse import unquote

    match = _FILENAME_STAR.search(header)
    if match:
        name = unquote(match.group(1).strip().strip('"'))
    else:
        match = _FILENAME.search(header)
        if not match:
            return None
        name = (match.group(2) if match.group(2) is not None else match.group(1)).strip()
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name if name not in ("", ".", "..") else None
