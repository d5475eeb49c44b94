"""examples/pandas_analysis.py against a real API over the session's replay: the frames it
builds hold exactly the brain's trades and days, whatever the page size."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pandas as pd
import pytest

from api.app import create_app
from examples import pandas_analysis as example
from shared.db import tables
from shared.settings import Secret
from tests.api.conftest import API_KEY
from tests.api.server import threaded_server
from tests.brain.test_replay import sql_rows
from tests.support.replay import Replay


@pytest.fixture
def client(replay: Replay) -> Iterator[httpx.Client]:
    # The example is synchronous: the API serves from a thread of its own.
    secrets = dataclasses.replace(replay.settings.secrets, api_keys=(Secret(API_KEY),))
    app = create_app(dataclasses.replace(replay.settings, secrets=secrets))
    with threaded_server(app) as url, example.api_client(url, API_KEY) as http:
        yield http


@pytest.mark.parametrize("page_size", [example.MAX_PAGE, 40])
def test_trades_frame_holds_every_trade(
    replay: Replay, client: httpx.Client, page_size: int
) -> None:
    in_sql = asyncio.run(sql_rows(replay, tables.trades))
    trades = example.load_trades(client, page_size=page_size)
    assert len(trades) == len(in_sql) > 40  # pages of 40 follow the cursor
    assert list(trades.columns) == [*example.TRADE_COLUMNS, "notional"]
    assert trades["id"].tolist() == [row.id for row in sorted(in_sql, key=by_time)]
    assert isinstance(trades["executed_at"].dtype, pd.DatetimeTZDtype)
    assert trades["fee"].sum() == pytest.approx(sum(row.fee for row in in_sql))
    closed = [row.pnl for row in in_sql if row.pnl is not None]
    assert trades["pnl"].count() == len(closed)
    assert trades["pnl"].sum() == pytest.approx(sum(closed))


def by_time(row: Any) -> tuple[datetime, int]:
    return row.executed_at, row.id


def test_filters_and_per_symbol_summary(replay: Replay, client: httpx.Client) -> None:
    in_sql = asyncio.run(sql_rows(replay, tables.trades))
    eth = example.load_trades(client, symbol="ETH/USDT", since="2024-08-01T00:00:00Z")
    since = datetime(2024, 8, 1, tzinfo=UTC)
    expected = [r for r in in_sql if r.symbol == "ETH/USDT" and r.executed_at >= since]
    assert len(eth) == len(expected) > 0
    assert set(eth["symbol"]) == {"ETH/USDT"}
    summary = example.per_symbol(example.load_trades(client))
    assert summary["trades"].sum() == len(in_sql)
    assert summary["realised_pnl"].sum() == pytest.approx(
        sum(r.pnl for r in in_sql if r.pnl is not None)
    )


def test_performance_frame_holds_every_day(replay: Replay, client: httpx.Client) -> None:
    in_sql = asyncio.run(sql_rows(replay, tables.daily_performance))
    days = example.load_performance(client)
    assert len(days) == len(in_sql) == 21
    assert days.index.is_monotonic_increasing
    assert str(days.index[0].date()) == "2024-07-22"
    assert set(example.PERFORMANCE_COLUMNS[1:]) | {"drawdown"} == set(days.columns)
    assert days["trade_count"].sum() == sum(row.trade_count for row in in_sql)
    assert days["daily_pnl"].sum() == pytest.approx(sum(row.daily_pnl for row in in_sql))
    assert (days["drawdown"] >= 0).all()
    week = example.load_performance(client, since="2024-08-05", until="2024-08-11")
    assert len(week) == 7
