"""Authenticating a /v1/events stream, and keeping keys given in URLs out of the logs.

A key comes with the handshake (``Authorization: Bearer``, else the ``token`` query
parameter) or as the first message, ``{"op": "auth", "token": "<key>"}``; each is checked by
the REST API's ``KeyChecker``. uvicorn logs a WebSocket's path with its query string, so
``QueryTokenFilter`` masks ``token=...`` in its lines, whether or not the key is a configured
one (a mistyped key is a secret too).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from starlette.datastructures import QueryParams
from starlette.types import Scope

from api.auth import bearer_token
from shared import jsonutil


def presented_key(scope: Scope, query: QueryParams) -> bytes | None:
    """The key of the Authorization header (Bearer), else of the ``token`` query parameter;
    None when the handshake brought none (an empty or non-Bearer header is a wrong key)."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            return bearer_token(value) or b""
    token = query.get("token")
    return None if token is None else token.encode()


def auth_message_token(text: str | None) -> str | None:
    """The token of a first message ``{"op": "auth", "token": "<key>"}``, else None."""
    if text is None:
        return None
    try:
        message: Any = jsonutil.loads(text)
    except jsonutil.JSONDecodeError:
        return None
    if not isinstance(message, dict) or message.get("op") != "auth":
        return None
    token = message.get("token")
    return token if isinstance(token, str) and token else None


_QUERY_TOKEN = re.compile(r"([?&]token=)[^&\s\"']*", re.IGNORECASE)
_UVICORN_LOGGERS = ("uvicorn.error", "uvicorn.access")


class QueryTokenFilter(logging.Filter):
    """Masks ``token=<key>`` in the query strings uvicorn logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # bad format args: the handler reports it; a filter must not raise
            return True
        if "token=" in message.lower():
            record.msg = _QUERY_TOKEN.sub(r"\1***", message)
            record.args = None
        return True


def redact_query_tokens() -> None:
    """Put a ``QueryTokenFilter`` on uvicorn's loggers (once)."""
    for name in _UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, QueryTokenFilter) for f in logger.filters):
            logger.addFilter(QueryTokenFilter())
