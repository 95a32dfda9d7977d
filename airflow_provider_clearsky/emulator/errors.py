"""The error type the emulator's domain layer raises, rendered as a ServiceResult by the app."""

from __future__ import annotations

from typing import Any

VALIDATION = 992
DOMAIN_RULE = 993
INSUFFICIENT_CREDITS = 994
NOT_PRODUCED = 1002
CONCURRENCY = 1003
AREA_LIMIT = 1004
BAND_LIMIT = 1005
NOT_ORDERED = 1006


class ApiError(Exception):
    """An error answer: HTTP status, ``Error.Code``, ``Error.Message`` and optional ``Data``."""

    def __init__(self, status: int, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.data = data


def validation_error(errors: dict[str, list[str]]) -> ApiError:
    return ApiError(400, VALIDATION, "One or more validation errors occurred.", errors)


def not_found(what: str, data: Any = None) -> ApiError:
    return ApiError(404, 404, what, data)
