"""A tiny Binance look-alike on a loopback port, for the exchange feed's tests.

It answers the two public spot endpoints ccxt's binance calls for ``fetch_ohlcv``:
``GET /api/v3/exchangeInfo`` (a minimal market list, for ``load_markets``) and
``GET /api/v3/klines`` (Binance's array format, with ``limit``/``startTime``/``endTime``).
Candles are a pure function of (symbol, open time) on a clock the test controls; the candle
still open at that clock's "now" is served too, with different values, as Binance does.
It can fail on demand: HTTP 500s, or connections closed without an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

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
class FakeBinance:
    symbols: tuple[str, ...]
    first_open: datetime  # the first candle the exchange has
    now: datetime  # the market clock; the feed under test reads the same one
    step: timedelta = timedelta(minutes=5)
    failure: Failure | None = None
    hidden_after: dict[str, datetime] = field(default_factory=dict)  # symbol -> newest shown open
    requests: list[RequestRecord] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    def clock(self) -> datetime:
        return self.now

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v3"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    def klines_requests(self, *, failed: bool | None = None) -> list[RequestRecord]:
        return [
            record
            for record in self.requests
            if record.path.endswith("/klines") and (failed is None or record.failed == failed)
        ]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # HTTP/1.1 keep-alive: one request after another on this connection
                head = await reader.readuntil(b"\r\n\r\n")
                method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
                split = urlsplit(target)
                params = {key: values[-1] for key, values in parse_qs(split.query).items()}
                failure = self.failure
                self.requests.append(
                    RequestRecord(split.path, params, time.monotonic(), failure is not None)
                )
                if failure == "close":
                    return  # hang up without a word
                if failure == "500":
                    status, body = 500, b"Internal Server Error"
                else:
                    status, body = self._answer(method, split.path, params)
                writer.write(
                    f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                    "Connection: keep-alive\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _answer(self, method: str, path: str, params: dict[str, str]) -> tuple[int, bytes]:
        if method == "GET" and path == "/api/v3/exchangeInfo":
            return 200, json.dumps(self._exchange_info()).encode()
        if method == "GET" and path == "/api/v3/klines":
            symbol = next((s for s in self.symbols if market_id(s) == params.get("symbol")), None)
            if symbol is None:
                return 400, b'{"code":-1121,"msg":"Invalid symbol."}'
            return 200, json.dumps(self._klines(symbol, params)).encode()
        return 404, b'{"code":-1,"msg":"not here"}'

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
