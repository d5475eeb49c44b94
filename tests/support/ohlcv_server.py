"""A tiny Binance look-alike on a loopback port, for the exchange feed's tests.

It answers the two public spot endpoints ccxt's binance calls for ``fetch_ohlcv``:
``GET /api/v3/exchangeInfo`` (a minimal market list, for ``load_markets``) and
``GET /api/v3/klines`` (Binance's array format, with ``limit``/``startTime``/``endTime``).
Candles are a pure function of (symbol, open time) on a clock the test controls; the candle
still open at that clock's "now" is served too, with different values, as Binance does.
It can fail on demand: HTTP 500s, or connections closed without an answer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from tests.support.loopback import HangUp, HttpRequest, HttpResponse, LoopbackApi

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Failure = Literal["500", "close"]


def to_ms(moment: datetime) -> int:
    return int((moment - _EPOCH) / timedelta(milliseconds=1))


def market_id(symbol: str) -> str:
    return symbol.replace("/", "")


def candle_values(symbol: str, open_ms: int) -> tuple[float, float, float, float, float]:
    """The closed candle of ``symbol`` opening at ``open_ms``: open, high, low, close, volume."""
    base = 100.0 * (1 + sum(map(ord, symbol)) % 7)
    minute = open_ms // 60_000
    o = base + (minute % 97) * 0.25
    c = base + ((minute + 5) % 97) * 0.25
    return o, max(o, c) + 1.5, min(o, c) - 1.5, c, 10.0 + minute % 13


@dataclass
class RequestRecord:
    path: str
    params: dict[str, str]
    at: float  # time.monotonic()
    failed: bool


@dataclass
class FakeBinance(LoopbackApi):
    symbols: tuple[str, ...]
    first_open: datetime  # the first candle the exchange has
    now: datetime  # the market clock; the feed under test reads the same one
    step: timedelta = timedelta(minutes=5)
    failure: Failure | None = None
    hidden_after: dict[str, datetime] = field(default_factory=dict)  # symbol -> newest shown open
    requests: list[RequestRecord] = field(default_factory=list)

    def clock(self) -> datetime:
        return self.now

    @property
    def url(self) -> str:
        return f"{self._http.origin}/api/v3"

    def klines_requests(self, *, failed: bool | None = None) -> list[RequestRecord]:
        return [
            record
            for record in self.requests
            if record.path.endswith("/klines") and (failed is None or record.failed == failed)
        ]

    async def _handle(self, request: HttpRequest) -> HttpResponse:
        params = request.query
        failure = self.failure
        self.requests.append(
            RequestRecord(request.path, params, time.monotonic(), failure is not None)
        )
        if failure == "close":
            raise HangUp  # hang up without a word
        if failure == "500":
            return HttpResponse(500, b"Internal Server Error")
        return self._answer(request.method, request.path, params)

    def _answer(self, method: str, path: str, params: dict[str, str]) -> HttpResponse:
        if method == "GET" and path == "/api/v3/exchangeInfo":
            return HttpResponse(200, self._exchange_info())
        if method == "GET" and path == "/api/v3/klines":
            symbol = next((s for s in self.symbols if market_id(s) == params.get("symbol")), None)
            if symbol is None:
                return HttpResponse(400, {"code": -1121, "msg": "Invalid symbol."})
            return HttpResponse(200, self._klines(symbol, params))
        return HttpResponse(404, {"code": -1, "msg": "not here"})

    def _exchange_info(self) -> dict[str, Any]:
        markets = [
            {
                "symbol": market_id(symbol),
                "status": "TRADING",
                "baseAsset": symbol.split("/")[0],
                "quoteAsset": symbol.split("/")[1],
                "isSpotTradingAllowed": True,
                "permissions": ["SPOT"],
                "filters": [],
            }
            for symbol in self.symbols
        ]
        return {"timezone": "UTC", "serverTime": to_ms(self.now), "symbols": markets}

    def _klines(self, symbol: str, params: dict[str, str]) -> list[list[Any]]:
        step_ms = to_ms(_EPOCH + self.step)
        first = to_ms(self.first_open)
        newest = to_ms(self.now) - (to_ms(self.now) - first) % step_ms  # the open candle
        if symbol in self.hidden_after:
            newest = min(newest, to_ms(self.hidden_after[symbol]))
        limit = min(int(params.get("limit", 500)), 1000)
        if "startTime" in params:
            start = max(first, int(params["startTime"]))
            start += (first - start) % step_ms  # round up onto the candle grid
            opens = list(range(start, newest + 1, step_ms))[:limit]
        else:
            opens = list(range(max(first, newest - (limit - 1) * step_ms), newest + 1, step_ms))
        if "endTime" in params:
            opens = [o for o in opens if o <= int(params["endTime"])]
        rows = []
        for open_ms in opens:
            o, h, low, c, v = candle_values(symbol, open_ms)
            if open_ms + step_ms > to_ms(self.now):  # still open: not its final values yet
                h, c, v = max(o, c) + 99.0, c + 50.0, 0.5
            row = [open_ms, str(o), str(h), str(low), str(c), str(v), open_ms + step_ms - 1]
            rows.append([*row, "0", 1, "0", "0", "0"])
        return rows
