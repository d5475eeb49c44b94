"""An Anthropic Messages API look-alike on a loopback port, for the AI strategist's tests.

It speaks enough of ``POST /v1/messages`` for the official ``anthropic`` SDK (the real client,
pointed at it with ``base_url``): it checks the key (``x-api-key``, or ``Authorization:
Bearer`` as the 2.x SDK sends it; 401 ``authentication_error`` otherwise), records every
request, and answers from a queue of scripted replies the test pushes: a message with a given
text and usage, a 429 ``rate_limit_error`` with ``retry-after``, a 500 ``api_error``, a 529
``overloaded_error``, or a request accepted and never answered (``HANG``). With the queue empty
it answers 500, so a test that did not expect a request fails loudly rather than hanging.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tests.support.loopback import HttpRequest, HttpResponse, LoopbackApi


@dataclass(frozen=True)
class Reply:
    """How one request is answered: a message (``text``) or an HTTP error (``error_type``)."""

    status: int = 200  # 0: accept the request and never answer
    text: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    stop_reason: str = "end_turn"
    error_type: str = ""
    headers: tuple[tuple[str, str], ...] = ()


HANG = Reply(status=0)


def message(
    text: str, *, input_tokens: int, output_tokens: int, stop_reason: str = "end_turn"
) -> Reply:
    return Reply(200, text, input_tokens, output_tokens, stop_reason)


def rate_limited(retry_after: str = "0", retry_after_ms: str | None = "1") -> Reply:
    # The real API sends retry-after in seconds; the SDK reads retry-after-ms first, and a
    # millisecond keeps the retry from costing the test the SDK's half-second backoff.
    headers = [("retry-after", retry_after)]
    if retry_after_ms is not None:
        headers.append(("retry-after-ms", retry_after_ms))
    return Reply(429, error_type="rate_limit_error", headers=tuple(headers))


def server_error() -> Reply:
    return Reply(500, error_type="api_error")


def overloaded() -> Reply:
    return Reply(529, error_type="overloaded_error")


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    status: int  # what was answered (0: never)
    at: float  # time.monotonic()


@dataclass
class MessagesApiServer(LoopbackApi):
    api_key: str
    requests: list[RecordedRequest] = field(default_factory=list)
    _replies: deque[Reply] = field(default_factory=deque)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def base_url(self) -> str:
        return self._http.origin

    @property
    def bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies of the authorised ``POST /v1/messages`` requests, in order."""
        return [r.body for r in self.requests if r.path == "/v1/messages" and r.status != 401]

    def push(self, *replies: Reply) -> None:
        self._replies.extend(replies)

    @property
    def pending(self) -> int:
        """Scripted replies not used yet."""
        return len(self._replies)

    # --- HTTP ------------------------------------------------------------------------------

    async def _handle(self, request: HttpRequest) -> HttpResponse:
        record = RecordedRequest(
            request.method,
            request.path,
            dict(request.headers),
            _json(request.body),
            0,
            time.monotonic(),
        )
        self.requests.append(record)
        reply = self._next_reply(record)
        if reply.status == 0:
            await asyncio.Event().wait()  # never answered: held until stop() ends it
        record.status = reply.status
        headers = (("request-id", f"req_test{len(self.requests)}"), *reply.headers)
        return HttpResponse(reply.status, self._answer(record, reply), headers)

    def _next_reply(self, record: RecordedRequest) -> Reply:
        if presented_key(record) != self.api_key:
            return Reply(401, error_type="authentication_error")
        if record.method != "POST" or record.path != "/v1/messages":
            return Reply(404, error_type="not_found_error")
        if not self._replies:
            return Reply(500, error_type="api_error", text="no scripted reply left")
        return self._replies.popleft()

    def _answer(self, record: RecordedRequest, reply: Reply) -> dict[str, Any]:
        if reply.error_type:
            text = reply.text or f"scripted {reply.error_type}"
            return {"type": "error", "error": {"type": reply.error_type, "message": text}}
        return {
            "id": f"msg_test{next(self._ids):04d}",
            "type": "message",
            "role": "assistant",
            "model": record.body.get("model", ""),
            "content": [{"type": "text", "text": reply.text}],
            "stop_reason": reply.stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens},
        }


def presented_key(record: RecordedRequest) -> str | None:
    """The API key a request carried: ``x-api-key`` (the 1.x SDK, curl examples) or a bearer
    token (the 2.x SDK)."""
    if key := record.headers.get("x-api-key"):
        return key
    scheme, _, token = record.headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


def _json(raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    value = json.loads(raw)
    return value if isinstance(value, dict) else {"_": value}
