"""A Telegram Bot API look-alike on a loopback port, for the Telegram relay and command tests.

It speaks enough of the Bot API for python-telegram-bot (the real library, pointed at it with
``base_url``): getMe, sendMessage, getUpdates (long polling over updates the test queues),
deleteWebhook, setMyCommands. Like Telegram it checks sendMessage's HTML (only Telegram's tags,
balanced; ``<`` and ``&`` only as entities) and the 4,096-character limit, answering 400 when
either is broken. It can fail on demand: 429 with ``retry_after``, 400, 500, or a request
accepted and never answered (``hang``).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from tests.support.loopback import HttpRequest, HttpResponse, LoopbackApi

BOT_USER = {"id": 4242, "is_bot": True, "first_name": "TradingBrain", "username": "tb_test_bot"}
_ALLOWED_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre", "a"}
    | {"span", "tg-spoiler", "tg-emoji", "blockquote"}
)
_TOKEN_RE = re.compile(r"<(/?)([a-zA-Z-]+)(?:\s[^<>]*)?>|&(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")


class HtmlError(ValueError):
    pass


def telegram_plain_text(text: str) -> str:
    """What a chat shows for ``text`` in HTML parse mode; HtmlError where Telegram says 400."""
    stack: list[str] = []
    plain: list[str] = []
    position = 0
    for match in _TOKEN_RE.finditer(text):
        _check_literal(text[position : match.start()])
        plain.append(text[position : match.start()])
        position = match.end()
        token = match.group(0)
        if token.startswith("&"):
            plain.append(html.unescape(token))
            continue
        closing, tag = match.group(1) == "/", match.group(2).lower()
        if tag not in _ALLOWED_TAGS:
            raise HtmlError(f"unsupported start tag {tag!r}")
        if not closing:
            stack.append(tag)
        elif not stack or stack.pop() != tag:
            raise HtmlError(f"unmatched end tag {tag!r}")
    _check_literal(text[position:])
    plain.append(text[position:])
    if stack:
        raise HtmlError(f"unclosed start tag {stack[-1]!r}")
    return "".join(plain)


def _check_literal(chunk: str) -> None:
    if "<" in chunk or "&" in chunk or ">" in chunk:
        raise HtmlError(f"unescaped character in {chunk[:40]!r}")


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True)
class Failure:
    """How the next sendMessage is answered instead of accepting it."""

    status: int  # 429, 400, 500; 0 for "accept the request and never answer"
    retry_after: int = 1
    description: str = ""


HANG = Failure(0)


@dataclass
class SendAttempt:
    chat_id: str
    text: str
    parse_mode: str | None
    status: int  # the HTTP status answered (0: never answered)
    at: float  # time.monotonic()
    plain: str = ""  # the text as the chat shows it (when accepted)


@dataclass
class BotApiServer(LoopbackApi):
    token: str
    attempts: list[SendAttempt] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)  # every method called, in order
    _failures: deque[Failure] = field(default_factory=deque)
    _updates: list[dict[str, Any]] = field(default_factory=list)
    _next_update_id: int = 1000
    _news: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def base_url(self) -> str:
        return f"{self._http.origin}/bot"

    @property
    def delivered(self) -> list[SendAttempt]:
        return [attempt for attempt in self.attempts if attempt.status == 200]

    def texts(self, chat_id: str | None = None) -> list[str]:
        """The plain texts delivered (to ``chat_id``), in order."""
        return [a.plain for a in self.delivered if chat_id is None or a.chat_id == chat_id]

    def fail_next(self, *failures: Failure) -> None:
        self._failures.extend(failures)

    def push_command(self, chat_id: int, text: str, *, username: str | None = None) -> int:
        """Queue a message as if a user typed ``text`` in chat ``chat_id``; its update id."""
        update_id = self._next_update_id
        self._next_update_id += 1
        command = text.split(maxsplit=1)[0] if text.startswith("/") else ""
        chat: dict[str, Any] = {"id": chat_id, "type": "private", "first_name": "Operator"}
        if username:
            chat["username"] = username
        message: dict[str, Any] = {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": chat,
            "from": {"id": chat_id, "is_bot": False, "first_name": "Operator"},
            "text": text,
        }
        if command:
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        self._updates.append({"update_id": update_id, "message": message})
        self._news.set()
        return update_id

    # --- HTTP ------------------------------------------------------------------------------

    async def _handle(self, request: HttpRequest) -> HttpResponse:
        params = _parse_body(request.headers.get("content-type", ""), request.body)
        status, answer = await self._answer(request.path, params)
        return HttpResponse(status, answer)

    async def _answer(self, path: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        prefix = f"/bot{self.token}/"
        if not path.startswith(prefix):
            return 401, _error(401, "Unauthorized")
        method = path[len(prefix) :]
        self.calls.append(method)
        if method == "sendMessage":
            return await self._send_message(params)
        if method == "getUpdates":
            return 200, _ok(await self._get_updates(params))
        if method == "deleteWebhook" and params.get("drop_pending_updates") == "true":
            self._updates.clear()
        simple: dict[str, Any] = {"getMe": BOT_USER, "deleteWebhook": True, "setMyCommands": True}
        if method in simple:
            return 200, _ok(simple[method])
        return 404, _error(404, "Not Found")

    async def _send_message(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        attempt = SendAttempt(
            params.get("chat_id", ""),
            params.get("text", ""),
            params.get("parse_mode"),
            0,
            time.monotonic(),
        )
        self.attempts.append(attempt)
        failure = self._failures.popleft() if self._failures else None
        if failure is HANG or (failure is not None and failure.status == 0):
            await asyncio.Event().wait()  # until the connection task is cancelled
        if failure is not None:
            attempt.status = failure.status
            if failure.status == 429:
                answer = _error(429, f"Too Many Requests: retry after {failure.retry_after}")
                answer["parameters"] = {"retry_after": failure.retry_after}
                return 429, answer
            description = failure.description or ("Bad Request" if failure.status == 400 else "")
            return failure.status, _error(failure.status, description or "Internal Server Error")
        try:
            html_mode = attempt.parse_mode == "HTML"
            plain = telegram_plain_text(attempt.text) if html_mode else attempt.text
        except HtmlError as exc:
            attempt.status = 400
            return 400, _error(400, f"Bad Request: can't parse entities: {exc}")
        if utf16_length(plain) > 4096:
            attempt.status = 400
            return 400, _error(400, "Bad Request: message is too long")
        attempt.status, attempt.plain = 200, plain
        message = {
            "message_id": len(self.attempts),
            "date": int(time.time()),
            "chat": {"id": _chat_id(attempt.chat_id), "type": "private"},
            "from": BOT_USER,
            "text": plain,
        }
        return 200, _ok(message)

    async def _get_updates(self, params: dict[str, str]) -> list[dict[str, Any]]:
        offset = int(params.get("offset", "0") or 0)
        self._updates = [u for u in self._updates if u["update_id"] >= offset]  # confirmed
        timeout = float(params.get("timeout", "0") or 0)
        if not self._updates and timeout > 0:
            self._news.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._news.wait(), timeout)
        return list(self._updates)


def _parse_body(content_type: str, body: bytes) -> dict[str, str]:
    if not body:
        return {}
    if content_type.startswith("application/json"):
        return {k: v if isinstance(v, str) else json.dumps(v) for k, v in json.loads(body).items()}
    return {key: values[-1] for key, values in parse_qs(body.decode()).items()}


def _chat_id(text: str) -> int | str:
    try:
        return int(text)
    except ValueError:
        return text


def _ok(result: Any) -> dict[str, Any]:
    return {"ok": True, "result": result}


def _error(code: int, description: str) -> dict[str, Any]:
    return {"ok": False, "error_code": code, "description": description}
