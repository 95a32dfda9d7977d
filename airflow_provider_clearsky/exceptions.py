"""The provider's exceptions: one hierarchy for sync and async calls.

Every error raised by the hook is a :class:`ClearSkyError`. Errors the API answered carry the HTTP status,
the API's ``Error.Code``, its message and per-field messages. No error ever carries the API key or a
signed upload URL: messages are built from the method, the path (without query) and the API's own text.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import NamedTuple

FieldErrors = Mapping[str, Sequence[str]]


def _format_field_errors(field_errors: FieldErrors) -> str:
    return "; ".join(f"{field}: {' '.join(messages)}" for field, messages in field_errors.items())


class ClearSkyError(Exception):
    """Base class of every error raised by this provider."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_code: int | None = None,
        field_errors: FieldErrors | None = None,
        endpoint: str | None = None,
    ) -> None:
        self.message = message
        self.status_code = status_code
        self.error_code = error_code
        self.field_errors: dict[str, list[str]] = {k: list(v) for k, v in (field_errors or {}).items()}
        self.endpoint = endpoint
        super().__init__(self._describe())

    def _describe(self) -> str:
        parts = []
        if self.endpoint:
            parts.append(self.endpoint)
        if self.status_code is not None:
            parts.append(f"HTTP {self.status_code}")
        if self.error_code is not None:
            parts.append(f"code {self.error_code}")
        prefix = f"[{', '.join(parts)}] " if parts else ""
        detail = f" ({_format_field_errors(self.field_errors)})" if self.field_errors else ""
        return f"{prefix}{self.message}{detail}"


class InvalidRequestError(ClearSkyError, ValueError):
    """The request was refused before anything was sent: a setting is missing or wrong.

    ``field_errors`` maps each offending field to what is wrong and how to fix it.
    """


class ClearSkyApiError(ClearSkyError):
    """The API answered with an error."""


class BadRequestError(ClearSkyApiError):
    """HTTP 400 without a more specific code: fix the request, do not retry."""


class ValidationFailedError(BadRequestError):
    """Codes 992 and 993, or an ASP.NET ProblemDetails body: the request body or parameters are invalid."""


class InsufficientCreditsError(BadRequestError):
    """Code 994: not enough processing units (or order credits) for this request."""


class NoImageryError(BadRequestError):
    """Code 1002: no imagery for this area and date (not produced yet, or not supported)."""


class LimitExceededError(BadRequestError):
    """Codes 1004 (``MaxCompositeAreaKm2``) and 1005 (``MaxTotalBands``): split the area or request fewer bands."""


class NotCoveredByOrderError(BadRequestError):
    """Code 1006: the area or date is not covered by any of the account's orders."""


class AuthenticationError(ClearSkyApiError):
    """HTTP 401/403: the key is missing, wrong, revoked, or lacks permission."""


class NotFoundError(ClearSkyApiError):
    """HTTP 404: wrong path or unknown identifier (order, tile, minitile)."""


class RateLimitedError(ClearSkyApiError):
    """HTTP 429 or code 1003: too many requests in flight. Retried with backoff."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class ServerError(ClearSkyApiError):
    """HTTP 5xx: a transient fault on the service. Retried with backoff."""


class UnexpectedResponseError(ClearSkyApiError):
    """A success status whose body is not the API's answer: not the JSON envelope, or ``Data`` of the wrong shape.

    A proxy's sign-in page, a load balancer's maintenance page or an empty body under HTTP 200 is never data
    (an empty order list read from one would make a find-or-order step order twice). Retried like a 5xx; for a
    create POST the outcome is unknown. The message names the status, the content type and, for a body that
    is not JSON, its first bytes; a JSON body is described by its keys only (the 2024 key info echoes the key).
    """


class TransportError(ClearSkyError):
    """The request or response did not cross the network whole (connect error, timeout, dropped connection).

    ``request_sent`` is False only when the connection was never established, so the server cannot have
    acted on the request.
    """

    def __init__(self, message: str, *, request_sent: bool, **kwargs: object) -> None:
        self.request_sent = request_sent
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class OrderOutcomeUnknownError(ClearSkyError):
    """A create-order POST was sent but no definitive answer came back.

    The order may or may not exist. Sending the POST again could order twice, so the hook never does; look
    the order up (``ClearSkyCreateOrderOperator`` does) before deciding to create again.
    """


class AmbiguousOrderError(ClearSkyError):
    """More than one order on the account could be the one a create sent, or one cannot be told apart.

    Raised instead of adopting a guess or ordering again: either could pay twice or hand on the wrong
    order. The message names the orders; settle it in the dashboard (cancel what is not wanted while it is
    in Review), then clear the task.
    """


class RetryableTaskError(ClearSkyError):
    """A task step failed in a way a new try may fix (a transient fault left after the hook's own retries, a
    download cut short). Airflow retries the task; nothing was paid for twice or left half-written.
    """


API_ERROR_CODES: dict[int, type[ClearSkyApiError]] = {
    992: ValidationFailedError,
    993: ValidationFailedError,
    994: InsufficientCreditsError,
    1002: NoImageryError,
    1003: RateLimitedError,
    1004: LimitExceededError,
    1005: LimitExceededError,
    1006: NotCoveredByOrderError,
}


class ErrorPolicy(enum.Enum):
    """What an error does to the task that met it."""

    RETRY = "retry"  #: the try fails; Airflow retries the task (its ``retries``)
    WAIT = "wait"  #: a sensor's check or a trigger's poll says "not yet"; the wait goes on
    FAIL = "fail"  #: the task fails at once, without retries (``AirflowFailException``)


class ErrorHandling(NamedTuple):
    """One row of :data:`ERROR_POLICIES`: what an error does in a task step and in a wait."""

    task: ErrorPolicy  #: in an operator's step (the hook already retried what it safely could)
    wait: ErrorPolicy  #: in a sensor's check (poke, reschedule, deferrable's first check) or a trigger's poll
    meaning: str  #: when it happens, for the docs


RETRY, WAIT, FAIL = ErrorPolicy.RETRY, ErrorPolicy.WAIT, ErrorPolicy.FAIL

#: The one error policy: the first class of an error's MRO found here decides. Operators, sensors and
#: triggers all read it (:func:`error_policy`); ``docs/sensors.md`` shows it (a test keeps them in sync).
ERROR_POLICIES: dict[type[BaseException], ErrorHandling] = {
    RateLimitedError: ErrorHandling(RETRY, WAIT, "HTTP 429 or code 1003: too many requests"),
    ServerError: ErrorHandling(RETRY, WAIT, "HTTP 5xx"),
    TransportError: ErrorHandling(RETRY, WAIT, "timeout, refused or dropped connection"),
    UnexpectedResponseError: ErrorHandling(RETRY, WAIT, "a 2xx whose body is not the API's answer"),
    OrderOutcomeUnknownError: ErrorHandling(RETRY, RETRY, "a create sent but unanswered (the next try looks it up)"),
    RetryableTaskError: ErrorHandling(RETRY, RETRY, "a step a new try may fix (e.g. a download cut short)"),
    InvalidRequestError: ErrorHandling(FAIL, FAIL, "bad settings, refused before any request"),
    BadRequestError: ErrorHandling(
        FAIL,
        FAIL,
        "HTTP 400: validation (992, 993), insufficient credits (994), no imagery (1002), limits "
        "(1004, 1005), not covered by an order (1006)",
    ),
    AuthenticationError: ErrorHandling(FAIL, FAIL, "HTTP 401/403: wrong, revoked or unauthorised key"),
    NotFoundError: ErrorHandling(FAIL, FAIL, "HTTP 404: unknown order, tile or minitile"),
    AmbiguousOrderError: ErrorHandling(FAIL, FAIL, "more than one order could be the one a create sent"),
    ClearSkyError: ErrorHandling(FAIL, FAIL, "any other error of this provider"),
    Exception: ErrorHandling(RETRY, RETRY, "any other exception (Airflow's default)"),
}


def error_policy(error: BaseException, *, waiting: bool = False) -> ErrorPolicy:
    """Return what ``error`` does in a task step, or (``waiting``) in a sensor's check or a trigger's poll."""
    for cls in type(error).__mro__:
        handling = ERROR_POLICIES.get(cls)
        if handling is not None:
            return handling.wait if waiting else handling.task
    return RETRY  # a BaseException outside Exception (never caught by the deciders)


def error_class_for(status_code: int, error_code: int | None) -> type[ClearSkyApiError]:
    """The exception type for an API error, by ``Error.Code`` first and HTTP status second."""
    if error_code is not None and error_code in API_ERROR_CODES:
        return API_ERROR_CODES[error_code]
    if status_code in (401, 403):
        return AuthenticationError
    if status_code == 404:
        return NotFoundError
    if status_code == 429:
        return RateLimitedError
    if status_code >= 500 or status_code in (408, 425):  # Request Timeout, Too Early: try again later
        return ServerError
    return BadRequestError
