"""The /v1/events wire protocol: close codes, control frames, and the stream request.

Events go out as the catalog's wire JSON (``Event.encode()``), encoded once per event into a
``Frame`` that every client wanting it is handed as is. Control frames carry a reserved name
(``heartbeat``, ``replay_incomplete``), ``id`` null and a timestamp. ``StreamRequest.parse``
reads the query string (``last_event_id``, ``events``, ``symbols``, ``token``) and refuses
anything else with a ``ProtocolError`` naming the parameter (close code 4400).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from starlette.datastructures import QueryParams

from api.params import SYMBOL_PATTERN
from shared import jsonutil
from shared.events import CATALOG, Event, EventName
from shared.store.base import event_seq
from shared.timeutil import to_iso, utc_now

PATH = "/v1/events"
HEARTBEAT = "heartbeat"
REPLAY_INCOMPLETE = "replay_incomplete"
CONTROL_FRAMES = (HEARTBEAT, REPLAY_INCOMPLETE)
PARAMETERS = ("last_event_id", "events", "symbols", "token")
MAX_REASON_BYTES = 123  # a close frame's reason (RFC 6455: 125 bytes of payload, 2 for the code)

_SYMBOL = re.compile(SYMBOL_PATTERN)
_CARRY_SYMBOL = frozenset(name for name, spec in CATALOG.items() if spec.carries_symbol)


class CloseCode(IntEnum):
    """Every code the server closes a stream with (docs/events.md says when)."""

    GOING_AWAY = 1001  # the relay stopped while the process stayed up
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012  # the API process is shutting down (sent by uvicorn)
    TRY_AGAIN_LATER = 1013  # the event log is unavailable: reconnect with last_event_id
    BAD_REQUEST = 4400  # a bad query parameter
    UNAUTHORIZED = 4401  # no valid first-message auth within the timeout
    SLOW_CONSUMER = 4408  # the client fell behind its send queue (or the log's retention)


class ProtocolError(Exception):
    """A stream that cannot go on: the code and the reason it is closed with."""

    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = close_reason(reason)


def close_reason(text: str) -> str:
    """``text`` cut to what a close frame can carry, on a UTF-8 character boundary."""
    raw = text.encode()
    if len(raw) <= MAX_REASON_BYTES:
        return text
    return raw[: MAX_REASON_BYTES - 3].decode(errors="ignore") + "..."


@dataclass(frozen=True, slots=True)
class Frame:
    """One event as it goes out: its position, what filters look at, and its ASGI message
    (the wire JSON as text, prepared once and shared by every client that wants it)."""

    seq: int
    name: EventName
    symbol: str | None
    message: dict[str, Any]

    @property
    def text(self) -> str:
        text: str = self.message["text"]
        return text

    @classmethod
    def of(cls, event: Event) -> Frame:
        text = event.encode().decode()
        return cls(event_seq(event.id), event.name, symbol_of(event), text_message(text))


def symbol_of(event: Event) -> str | None:
    """The symbol an event is about, for the events whose catalog entry carries one."""
    if event.name not in _CARRY_SYMBOL:
        return None
    symbol = event.data.get("symbol")
    return symbol if isinstance(symbol, str) else None


def text_message(text: str) -> dict[str, Any]:
    return {"type": "websocket.send", "text": text}


def control_frame(event: str, data: dict[str, Any]) -> dict[str, Any]:
    """The ASGI message of a control frame: reserved name, ``id`` null, a timestamp."""
    wire = {"id": None, "event": event, "data": data, "timestamp": to_iso(utc_now())}
    return text_message(jsonutil.dumps_str(wire))


def heartbeat(position: int) -> dict[str, Any]:
    return control_frame(HEARTBEAT, {"last_event_id": str(position)})


def replay_incomplete(requested: str, oldest: str | None) -> dict[str, Any]:
    return control_frame(REPLAY_INCOMPLETE, {"requested": requested, "oldest": oldest})


@dataclass(frozen=True, slots=True)
class StreamFilter:
    """Which events a client wants: names (None: all) and symbols (None: all). The symbol
    filter applies to events that carry a symbol; the others pass it."""

    names: frozenset[EventName] | None = None
    symbols: frozenset[str] | None = None

    @property
    def everything(self) -> bool:
        return self.names is None and self.symbols is None

    def wants(self, frame: Frame) -> bool:
        return self.accepts(frame.name, frame.symbol)

    def accepts(self, name: EventName, symbol: str | None) -> bool:
        if self.names is not None and name not in self.names:
            return False
        return self.symbols is None or symbol is None or symbol in self.symbols


@dataclass(frozen=True, slots=True)
class StreamRequest:
    """What a client asked for in the query string."""

    last_event_id: str | None
    filter: StreamFilter
    token: str | None

    @classmethod
    def parse(cls, query: QueryParams) -> StreamRequest:
        unknown = sorted(set(query.keys()) - set(PARAMETERS))
        if unknown:
            _refuse(unknown[0], f"unknown parameter (known: {', '.join(PARAMETERS)})")
        last_event_id = _single(query, "last_event_id")
        if last_event_id is not None:
            try:
                event_seq(last_event_id)
            except ValueError:
                _refuse("last_event_id", f"not an event id (digits): {last_event_id!r}")
        names = _names(_items(query, "events"))
        symbols = _symbols(_items(query, "symbols"))
        return cls(last_event_id, StreamFilter(names, symbols), _single(query, "token"))


def _refuse(name: str, problem: str) -> None:
    raise ProtocolError(CloseCode.BAD_REQUEST, f"{name}: {problem}")


def _single(query: QueryParams, name: str) -> str | None:
    values = query.getlist(name)
    if len(values) > 1:
        _refuse(name, "given more than once")
    return values[0] if values else None


def _items(query: QueryParams, name: str) -> list[str] | None:
    """The comma-separated values of a list parameter (repeats add up); None when absent."""
    values = query.getlist(name)
    if not values:
        return None
    items = [item.strip() for value in values for item in value.split(",") if item.strip()]
    if not items:
        _refuse(name, "give at least one value, comma separated")
    return items


def _names(items: Iterable[str] | None) -> frozenset[EventName] | None:
    if items is None:
        return None
    names = set(items)
    unknown = sorted(names - {name.value for name in EventName})
    if unknown:
        _refuse("events", f"unknown event name {', '.join(map(repr, unknown))}")
    return frozenset(EventName(name) for name in names)


def _symbols(items: Iterable[str] | None) -> frozenset[str] | None:
    if items is None:
        return None
    symbols = frozenset(items)
    bad = sorted(symbol for symbol in symbols if not _SYMBOL.match(symbol))
    if bad:
        _refuse("symbols", f"not a symbol: {bad[0]!r}")
    return symbols
