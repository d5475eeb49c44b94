"""The Data API over a real brain's state: the shipped three weeks replayed through the brain
(the session's shared replay, on each store backend), then every endpoint read through a real
uvicorn and checked against the plan's shapes and against the brain's own SQL history."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from api.app import create_app
from shared.db import tables
from shared.settings import Secret
from tests.api.conftest import API_KEY, AUTH
from tests.api.server import run_server
from tests.brain.test_replay import sql_rows
from tests.support.replay import Replay

PLAN_FIELDS = {
    "/v1/system": {"status", "mode", "uptime_seconds", "version", "started_at", "last_scan",
                   "paused", "halted", "halt_reason"},
    "/v1/portfolio": {"total_value", "cash", "unrealized_pnl", "position_count", "allocation"},
    "/v1/risk": {"limits", "current"},
    "/v1/strategy": {"active", "paper_test", "recent_versions"},
}  # fmt: skip
TRADE_FIELDS = {"id", "symbol", "action", "qty", "price", "fee", "pnl", "pnl_pct",
                "strategy_version", "executed_at"}  # fmt: skip
SIGNAL_FIELDS = {"id", "symbol", "action", "confidence", "strategy_version", "executed",
                 "rejected_reason", "created_at"}  # fmt: skip
DAY_FIELDS = {"date", "portfolio_value", "daily_pnl", "daily_pnl_pct", "trade_count",
              "win_count", "loss_count", "fees"}  # fmt: skip
MARKET_FIELDS = {"symbol", "price", "regime", "trend", "rsi", "ema_fast", "ema_slow",
                 "volume_ratio", "signal", "scanned_at"}  # fmt: skip


@pytest.fixture
async def client(replay: Replay) -> AsyncIterator[httpx.AsyncClient]:
    settings = dataclasses.replace(
        replay.settings,
        secrets=dataclasses.replace(replay.settings.secrets, api_keys=(Secret(API_KEY),)),
    )
    app = create_app(settings)
    async with (
        run_server(app) as url,
        httpx.AsyncClient(base_url=url, headers=AUTH, timeout=10) as http,
    ):
        yield http


async def data(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"data", "meta"}
    assert body["meta"]["mode"] == "paper"
    assert body["meta"]["timestamp"].endswith("Z")
    return body["data"]


async def all_pages(client: httpx.AsyncClient, path: str, **params: Any) -> list[Any]:
    rows: list[Any] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get(path, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        rows += body["data"]
        cursor = body["meta"].get("next_cursor")
        if not cursor:
            return rows


async def test_snapshot_endpoints_have_the_plans_shapes(
    replay: Replay, client: httpx.AsyncClient
) -> None:
    for path, fields in PLAN_FIELDS.items():
        assert fields <= set(await data(client, path)), path
    system = await data(client, "/v1/system")
    assert system["status"] == "stopped"  # the replay ended with system_shutdown
    assert system["last_scan"] == "2024-08-12T00:00:00Z"
    market = await data(client, "/v1/market")
    assert {m["symbol"] for m in market} == set(replay.settings.market.symbols)
    assert all(set(m) >= MARKET_FIELDS for m in market)
    portfolio = await data(client, "/v1/portfolio")
    assert replay.result.engine is not None
    assert portfolio["cash"] == pytest.approx(replay.result.engine.portfolio.cash, abs=1e-6)
    allocation = portfolio["allocation"]
    assert allocation["cash_pct"] + allocation["positions_pct"] == pytest.approx(100, abs=0.01)
    risk = await data(client, "/v1/risk")
    assert risk["limits"]["max_position_pct"] == 0.15  # a fraction, as the plan says
    benchmarks = await data(client, "/v1/benchmarks")
    assert {"total_trades", "win_rate", "profit_factor", "max_drawdown"} <= set(benchmarks)


async def test_trades_pages_cover_the_brains_history_newest_first(
    replay: Replay, client: httpx.AsyncClient
) -> None:
    trades = await all_pages(client, "/v1/trades", limit=500)
    in_sql = await sql_rows(replay, tables.trades)
    assert len(trades) == len(in_sql)
    assert [t["id"] for t in trades] == sorted((t.id for t in in_sql), reverse=True)
    assert all(set(t) == TRADE_FIELDS for t in trades)
    opening = [t for t in trades if t["action"] == "BUY"]
    assert all(t["pnl"] is None and t["pnl_pct"] is None for t in opening)
    assert all(t["pnl"] is not None for t in trades if t["action"] != "BUY")
    default_page = await data(client, "/v1/trades")
    assert len(default_page) == 50


async def test_trade_filters_agree_with_sql(replay: Replay, client: httpx.AsyncClient) -> None:
    in_sql = await sql_rows(replay, tables.trades)
    eth = await all_pages(
        client, "/v1/trades", symbol="ETH/USDT", since="2024-08-01T00:00:00Z", limit=500
    )
    expected = [
        t for t in in_sql if t.symbol == "ETH/USDT" and t.executed_at.isoformat() >= "2024-08-01"
    ]
    assert len(eth) == len(expected) > 0


async def test_signals_and_performance(replay: Replay, client: httpx.AsyncClient) -> None:
    buys = await all_pages(client, "/v1/signals", action="BUY", limit=500)
    in_sql = await sql_rows(replay, tables.signals)
    assert len(buys) == sum(1 for s in in_sql if s.action == "BUY")
    assert all(set(s) == SIGNAL_FIELDS and s["action"] == "BUY" for s in buys)
    days = await data(client, "/v1/performance")
    assert len(days) == 21
    assert all(set(d) == DAY_FIELDS for d in days)
    assert days[0]["date"] == "2024-08-11"  # newest first
    week = await data(client, "/v1/performance", since="2024-08-05", until="2024-08-11")
    assert len(week) == 7


async def test_bad_parameters_and_keys_are_refused_on_replay_data(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/trades", params={"limit": 501})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_parameter"
    assert "limit" in response.json()["error"]["message"]
    anonymous = await client.get("/v1/trades", headers={"Authorization": ""})
    assert anonymous.status_code == 401
