"""The API's one domain exception and its error codes.

The facade and the parameter parsers raise ``ApiError``; ``api.responses`` renders it in the
error envelope once, for every route (and for Starlette's own 404/405 and for crashes).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class ErrorCode(StrEnum):
    UNAUTHORIZED = "unauthorized"
    NOT_FOUND = "not_found"
    INVALID_PARAMETER = "invalid_parameter"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    UPGRADE_REQUIRED = "upgrade_required"
    BRAIN_UNAVAILABLE = "brain_unavailable"
    INTERNAL_ERROR = "internal_error"


# The HTTP status each code is sent with.
STATUS = {
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.INVALID_PARAMETER: 400,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.UPGRADE_REQUIRED: 426,
    ErrorCode.BRAIN_UNAVAILABLE: 503,
    ErrorCode.INTERNAL_ERROR: 500,
}


class ApiError(Exception):
    """An error a client is told about: a code, a human message, an HTTP status."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = STATUS[code] if status is None else status
        self.headers = dict(headers or {})

    def __repr__(self) -> str:
        return f"ApiError({self.code.value!r}, {self.message!r}, status={self.status})"


def invalid_parameter(name: str, problem: str) -> ApiError:
    """A bad query parameter: the message always starts with the parameter's name."""
    return ApiError(ErrorCode.INVALID_PARAMETER, f"{name}: {problem}")


def brain_unavailable(message: str) -> ApiError:
    return ApiError(ErrorCode.BRAIN_UNAVAILABLE, message)


def internal_error() -> ApiError:
    return ApiError(ErrorCode.INTERNAL_ERROR, "internal server error")
