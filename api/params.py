"""Query parameters of the list endpoints: parsed, range-checked, and refused by name.

Every endpoint declares the keys it takes; an unknown key, a repeated key, an unparsable or
out-of-range value, or ``since`` after ``until`` is an ``invalid_parameter`` error whose
message starts with the parameter's name. Cursors are opaque to clients: base64url of the
sort key (timestamp, id) of the last row served, for keyset pagination.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from starlette.datastructures import QueryParams

from api.errors import invalid_parameter
from shared import jsonutil
from shared.timeutil import parse_date, parse_iso, to_iso

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
ACTIONS = ("BUY", "SELL", "CLOSE")
SYMBOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9/._:-]{0,31}$"
CURSOR_PATTERN = r"^[A-Za-z0-9_-]{1,200}$"
_SYMBOL = re.compile(SYMBOL_PATTERN)
_CURSOR = re.compile(CURSOR_PATTERN)

NO_PARAMETERS: frozenset[str] = frozenset()
TRADE_PARAMETERS = frozenset({"limit", "since", "until", "symbol", "cursor"})
SIGNAL_PARAMETERS = TRADE_PARAMETERS | {"action"}
PERFORMANCE_PARAMETERS = frozenset({"since", "until"})


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ended: rows strictly older than (moment, id) come next."""

    moment: datetime
    id: int

    def encode(self) -> str:
        raw = jsonutil.dumps([to_iso(self.moment), self.id])
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Raises ValueError for anything this API did not hand out."""
        if not _CURSOR.match(text):
            raise ValueError("not a cursor")
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            moment_text, row_id = jsonutil.loads(raw)
        except (binascii.Error, jsonutil.JSONDecodeError, TypeError, ValueError):
            raise ValueError("not a cursor") from None
        if not isinstance(moment_text, str) or type(row_id) is not int:
            raise ValueError("not a cursor")
        try:
            return cls(parse_iso(moment_text), row_id)
        except (ValueError, OverflowError):
            raise ValueError("not a cursor") from None


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """Filters and paging of /v1/trades and /v1/signals (``action`` only for signals)."""

    limit: int = DEFAULT_LIMIT
    since: datetime | None = None
    until: datetime | None = None
    symbol: str | None = None
    action: str | None = None
    cursor: Cursor | None = None


@dataclass(frozen=True, slots=True)
class PerformanceQuery:
    since: date | None = None
    until: date | None = None


class QueryReader:
    """The single values of a request's query string, after refusing unknown and repeated keys."""

    def __init__(self, params: QueryParams, allowed: Iterable[str]) -> None:
        allowed = frozenset(allowed)
        items = params.multi_items()
        unknown = sorted({key for key, _ in items} - allowed)
        if unknown:
            names = ", ".join(unknown)
            expected = ", ".join(sorted(allowed)) if allowed else "none"
            noun = "unknown query parameter" if len(unknown) == 1 else "unknown query parameters"
            raise invalid_parameter(names, f"{noun} (this endpoint takes: {expected})")
        self._values: dict[str, str] = {}
        for key, value in items:
            if key in self._values:
                raise invalid_parameter(key, "given more than once")
            self._values[key] = value

    def text(self, name: str) -> str | None:
        return self._values.get(name)

    def limit(self) -> int:
        text = self.text("limit")
        if text is None:
            return DEFAULT_LIMIT
        problem = f"must be an integer from 1 to {MAX_LIMIT}"
        if not (text.isascii() and text.isdigit() and len(text) <= 6):
            raise invalid_parameter("limit", f"{problem}, got {text!r}")
        value = int(text)
        if not 1 <= value <= MAX_LIMIT:
            raise invalid_parameter("limit", f"{problem}, got {value}")
        return value

    def moment(self, name: str) -> datetime | None:
        text = self.text(name)
        if text is None:
            return None
        try:
            return parse_iso(text)
        except (ValueError, OverflowError):
            raise invalid_parameter(
                name, f"must be an ISO 8601 date-time such as 2026-02-09T03:10:00Z, got {text!r}"
            ) from None

    def day(self, name: str) -> date | None:
        text = self.text(name)
        if text is None:
            return None
        try:
            return parse_date(text)
        except ValueError:
            raise invalid_parameter(
                name, f"must be an ISO 8601 date such as 2026-02-09, got {text!r}"
            ) from None

    def symbol(self) -> str | None:
        text = self.text("symbol")
        if text is None:
            return None
        if not _SYMBOL.match(text):
            raise invalid_parameter(
                "symbol", f"must be a market symbol such as BTC/USDT, got {text!r}"
            )
        return text.upper()

    def action(self) -> str | None:
        text = self.text("action")
        if text is None:
            return None
        if text.upper() not in ACTIONS:
            raise invalid_parameter("action", f"must be one of {', '.join(ACTIONS)}, got {text!r}")
        return text.upper()

    def cursor(self) -> Cursor | None:
        text = self.text("cursor")
        if text is None:
            return None
        try:
            return Cursor.decode(text)
        except ValueError:
            raise invalid_parameter(
                "cursor", "is not a cursor this API handed out (use meta.next_cursor as given)"
            ) from None


def _check_order(since: date | None, until: date | None) -> None:
    if since is not None and until is not None and since > until:
        raise invalid_parameter("since", "must not be after until")


def history_query(params: QueryParams, *, with_action: bool) -> HistoryQuery:
    reader = QueryReader(params, SIGNAL_PARAMETERS if with_action else TRADE_PARAMETERS)
    query = HistoryQuery(
        limit=reader.limit(),
        since=reader.moment("since"),
        until=reader.moment("until"),
        symbol=reader.symbol(),
        action=reader.action() if with_action else None,
        cursor=reader.cursor(),
    )
    _check_order(query.since, query.until)
    return query


def performance_query(params: QueryParams) -> PerformanceQuery:
    reader = QueryReader(params, PERFORMANCE_PARAMETERS)
    query = PerformanceQuery(since=reader.day("since"), until=reader.day("until"))
    _check_order(query.since, query.until)
    return query


def no_parameters(params: QueryParams) -> None:
    """Endpoints that take no query parameters refuse any."""
    if params:
        QueryReader(params, NO_PARAMETERS)
