"""Process logging for the brain and the API: one line per record, UTC with Z, secrets redacted.

A line looks like ``2026-02-09T03:10:00.123Z brain.risk WARNING daily loss limit reached``.
``SecretRedactionFilter`` sits on the root handler, so every record any logger propagates to it
is scrubbed of configured secret values before it is written.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

from shared.settings import Secret, Secrets

__all__ = ["REDACTED", "SecretRedactionFilter", "configure_logging", "secret_values"]

REDACTED = "***"
_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


class _UtcLineFormatter(logging.Formatter):
    """ISO 8601 UTC timestamps with milliseconds and Z; newlines escaped to keep one line."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        # Tracebacks and multi-line messages stay one record per line for log collectors.
        return super().format(record).replace("\r", "\\r").replace("\n", "\\n")


class _ProcessHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root handler configure_logging installs; its type lets a second call replace it."""


class SecretRedactionFilter(logging.Filter):
    """Replaces every occurrence of a secret value in a record's message, args and traceback."""

    def __init__(self, secret_values: Iterable[str]) -> None:
        super().__init__()
        # Longest first, so a whole URL is replaced before the password inside it.
        self._values = sorted({value for value in secret_values if value}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._values:
            return True
        try:
            message = record.getMessage()
        except Exception:  # bad format args: emit() reports it; a filter must not raise
            return True
        # Redact the merged message, not msg and args apart: a secret can be in either.
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def secret_values(secrets: Secrets) -> list[str]:
    """Every string that must never be logged: each key and token, URLs and their passwords."""
    values = [key.get() for key in secrets.api_keys]
    for secret in (secrets.telegram_bot_token, secrets.telegram_chat_id, secrets.anthropic_api_key):
        if secret is not None:
            values.append(secret.get())
    for url in (secrets.redis_url, secrets.database_url):
        if url is not None:
            values.extend(_url_secrets(url))
    return values


def _url_secrets(url: Secret) -> list[str]:
    text = url.get()
    try:
        password = urlsplit(text).password
    except ValueError:  # not a parseable URL: the whole string is still redacted
        password = None
    if not password:
        return [text]
    return [text, password, unquote(password)]


def configure_logging(level: str = "INFO", *, secrets: Secrets | None = None) -> None:
    """Send every log record to stderr, one line each, with ``secrets`` redacted.

    Idempotent: a second call replaces the handler the first installed (never adds another).
    """
    numeric_level = logging.getLevelName(level.upper())
    if not isinstance(numeric_level, int):
        raise ValueError(f"unknown log level: {level!r}")
    handler = _ProcessHandler(sys.stderr)
    handler.setFormatter(_UtcLineFormatter(_FORMAT))
    handler.addFilter(SecretRedactionFilter(secret_values(secrets) if secrets else ()))
    root = logging.getLogger()
    for existing in [h for h in root.handlers if isinstance(h, _ProcessHandler)]:
        root.removeHandler(existing)
        existing.close()
    root.addHandler(handler)
    root.setLevel(numeric_level)
