"""The response envelope (plan section 2.4), encoded with orjson.

Every body is ``{"data": ..., "meta": {...}}`` or ``{"error": {"code", "message"}, "meta": {...}}``;
``meta`` holds ``timestamp`` (UTC, whole seconds, Z), ``mode`` and ``version``, plus
``next_cursor`` on paginated lists. ``meta`` is encoded once a second; cached snapshots
(``RawJson``) and history lists (``EncodedList``) arrive already encoded, so serving them
encodes almost nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response

from api.errors import ApiError
from api.history_cache import EncodedList
from shared import jsonutil
from shared.timeutil import to_iso

JSON_MEDIA_TYPE = "application/json"
_JSON_CONTENT_TYPE = JSON_MEDIA_TYPE.encode("latin-1")


@dataclass(frozen=True, slots=True)
class RawJson:
    """Data already encoded as JSON (a cached snapshot), spliced into the envelope as is."""

    body: bytes


class JsonResponse(Response):
    """A response whose body is JSON bytes already encoded (or any value, encoded by orjson)."""

    media_type = JSON_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        if isinstance(content, bytes):
            return content
        return jsonutil.dumps(content)

    def init_headers(self, headers: Mapping[str, str] | None = None) -> None:
        if headers:
            super().init_headers(headers)
            return
        # The common case, without Starlette's general header assembly.
        self.raw_headers = [
            (b"content-length", str(len(self.body)).encode("latin-1")),
            (b"content-type", _JSON_CONTENT_TYPE),
        ]


class MetaClock:
    """The ``meta`` object, re-encoded only when the second or the mode changes."""

    def __init__(self, version: str, clock: Callable[[], float] = time.time) -> None:
        self.version = version
        self._clock = clock
        self._key: tuple[int, str] | None = None
        self._meta: dict[str, Any] = {}
        self._encoded = b""

    def _refresh(self, mode: str) -> None:
        second = int(self._clock())
        if self._key != (second, mode):
            stamp = to_iso(datetime.fromtimestamp(second, UTC))
            self._meta = {"timestamp": stamp, "mode": mode, "version": self.version}
            self._encoded = jsonutil.dumps(self._meta)
            self._key = (second, mode)

    def meta(self, mode: str) -> dict[str, Any]:
        self._refresh(mode)
        return dict(self._meta)

    def encoded(self, mode: str) -> bytes:
        self._refresh(mode)
        return self._encoded


class Envelope:
    """Renders data and errors in the envelope; ``mode`` says the brain's trading mode."""

    def __init__(self, clock: MetaClock, mode: Callable[[], str]) -> None:
        self._clock = clock
        self._mode = mode

    def data(self, payload: RawJson | EncodedList | Any, *, status: int = 200) -> JsonResponse:
        mode = self._mode()
        if isinstance(payload, RawJson):
            body = b'{"data":' + payload.body + b',"meta":' + self._clock.encoded(mode) + b"}"
        elif isinstance(payload, EncodedList):
            if payload.paged:
                meta = self._clock.meta(mode)
                meta["next_cursor"] = payload.next_cursor
                encoded_meta = jsonutil.dumps(meta)
            else:
                encoded_meta = self._clock.encoded(mode)
            body = b'{"data":' + payload.body + b',"meta":' + encoded_meta + b"}"
        else:
            body = b'{"data":' + jsonutil.dumps(payload) + b',"meta":' + self._clock.encoded(mode)
            body += b"}"
        return JsonResponse(body, status_code=status)

    def error(self, error: ApiError) -> JsonResponse:
        return self.error_parts(error.code.value, error.message, error.status, error.headers)

    def error_parts(
        self, code: str, message: str, status: int, headers: Mapping[str, str] | None = None
    ) -> JsonResponse:
        body = (
            b'{"error":'
            + jsonutil.dumps({"code": code, "message": message})
            + b',"meta":'
            + self._clock.encoded(self._mode())
            + b"}"
        )
        return JsonResponse(body, status_code=status, headers=dict(headers or {}))
