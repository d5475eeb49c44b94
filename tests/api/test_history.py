"""The history endpoints on SQLite and PostgreSQL: order, limits, filters and cursors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from api.history_cache import DataVersion
from shared.db.engine import create_engine
from shared.db.tables import trades
from shared.timeutil import parse_iso, to_iso
from tests.api import brain_state
from tests.api.conftest import Api

TRADES = 137
SIGNALS = 91


@pytest.fixture
def history_url(database_url: str) -> str:
    """Both SQL databases (PostgreSQL with TB_TEST_DATABASE_URL)."""
    return database_url


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """The history does not depend on the store: one store backend is enough here."""
    return str(request.param)


def expected(rows: list[dict[str, Any]], when: str, **filters: Any) -> list[dict[str, Any]]:
    """Rows with their ids (1..n in insertion order), filtered and sorted newest first."""
    numbered = [{**row, "id": index + 1} for index, row in enumerate(rows)]
    since, until = filters.pop("since", None), filters.pop("until", None)
    chosen = [
        row
        for row in numbered
        if all(row[key] == value for key, value in filters.items())
        and (since is None or row[when] >= since)
        and (until is None or row[when] <= until)
    ]
    return sorted(chosen, key=lambda row: (row[when], row["id"]), reverse=True)


async def walk(api: Api, path: str, params: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """Every page of a list, following next_cursor; returns the rows and the page count."""
    rows: list[dict[str, Any]] = []
    pages = 0
    cursor = None
    while True:
        query = dict(params) | ({"cursor": cursor} if cursor else {})
        response = await api.get(path, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        rows += body["data"]
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            return rows, pages
        assert len(body["data"]) == params.get("limit", 50)
        assert pages < 1000


async def test_trades_are_newest_first_and_cursors_walk_every_row_once(
    api: Api, history: AsyncEngine
) -> None:
    await brain_state.insert_history(history, trade_count=TRADES)
    want = [row["id"] for row in expected(brain_state.trade_rows(TRADES), "executed_at")]

    body = (await api.get("/v1/trades")).json()
    assert [t["id"] for t in body["data"]] == want[:50]  # default limit 50
    assert body["meta"]["next_cursor"]

    for limit in (1, 7, 50, 136):
        rows, pages = await walk(api, "/v1/trades", {"limit": limit})
        assert [t["id"] for t in rows] == want, limit
        assert pages == -(-TRADES // limit)  # no empty last page: limit + 1 rows are read

    for limit in (137, 500):
        body = (await api.get("/v1/trades", params={"limit": limit})).json()
        assert [t["id"] for t in body["data"]] == want
        assert body["meta"]["next_cursor"] is None


async def test_trade_filters(api: Api, history: AsyncEngine) -> None:
    await brain_state.insert_history(history, trade_count=TRADES)
    rows = brain_state.trade_rows(TRADES)
    since = rows[20]["executed_at"]
    until = rows[100]["executed_at"]
    cases: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({"symbol": "ETH/USDT"}, {"symbol": "ETH/USDT"}),
        ({"symbol": "eth/usdt"}, {"symbol": "ETH/USDT"}),
        ({"since": to_iso(since)}, {"since": since}),
        ({"until": to_iso(until)}, {"until": until}),
        ({"since": to_iso(since), "until": to_iso(until)}, {"since": since, "until": until}),
        ({"since": to_iso(since), "until": to_iso(since)}, {"since": since, "until": since}),
        (
            {"since": to_iso(since), "until": to_iso(until), "symbol": "SOL/USDT"},
            {"since": since, "until": until, "symbol": "SOL/USDT"},
        ),
        ({"symbol": "DOGE/USDT"}, {"symbol": "DOGE/USDT"}),
        # Offsets are converted to UTC: the same instant as the Z form.
        (
            {"since": (since + timedelta(hours=2)).isoformat().replace("+00:00", "+02:00")},
            {"since": since + timedelta(hours=2) - timedelta(hours=2)},
        ),
    ]
    for params, filters in cases:
        want = [row["id"] for row in expected(rows, "executed_at", **filters)]
        got, _ = await walk(api, "/v1/trades", {"limit": 10, **params})
        assert [t["id"] for t in got] == want, params
        if "symbol" in filters:
            assert {t["symbol"] for t in got} <= {filters["symbol"]}
        for trade in got:
            moment = parse_iso(trade["executed_at"])
            assert filters.get("since", moment) <= moment <= filters.get("until", moment)


async def test_signal_filters(api: Api, history: AsyncEngine) -> None:
    await brain_state.insert_history(history, signal_count=SIGNALS)
    rows = brain_state.signal_rows(SIGNALS)
    since, until = rows[10]["created_at"], rows[70]["created_at"]
    cases: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({}, {}),
        ({"action": "BUY"}, {"action": "BUY"}),
        ({"action": "close"}, {"action": "CLOSE"}),
        ({"action": "SELL", "symbol": "ETH/USDT"}, {"action": "SELL", "symbol": "ETH/USDT"}),
        ({"since": to_iso(since), "until": to_iso(until)}, {"since": since, "until": until}),
        (
            {"since": to_iso(since), "action": "CLOSE", "symbol": "BTC/USDT"},
            {"since": since, "action": "CLOSE", "symbol": "BTC/USDT"},
        ),
    ]
    for params, filters in cases:
        want = expected(rows, "created_at", **filters)
        got, _ = await walk(api, "/v1/signals", {"limit": 8, **params})
        assert [s["id"] for s in got] == [row["id"] for row in want], params
        assert [s["executed"] for s in got] == [row["executed"] for row in want]
        assert [s["rejected_reason"] for s in got] == [row["rejected_reason"] for row in want]
    body = (await api.get("/v1/signals", params={"limit": 500})).json()
    assert len(body["data"]) == SIGNALS
    assert body["meta"]["next_cursor"] is None


async def test_performance_days_in_range_newest_first(api: Api, history: AsyncEngine) -> None:
    await brain_state.insert_history(history, days=40)
    all_days = (await api.get("/v1/performance")).json()
    assert [d["date"] for d in all_days["data"]][:2] == ["2024-08-09", "2024-08-08"]
    assert len(all_days["data"]) == 40
    assert "next_cursor" not in all_days["meta"]

    days = await api.data("/v1/performance", params={"since": "2024-07-10", "until": "2024-07-12"})
    assert [d["date"] for d in days] == ["2024-07-12", "2024-07-11", "2024-07-10"]
    assert days[0]["daily_pnl_pct"] == 0.5  # a percent, as stored
    assert [
        d["date"] for d in await api.data("/v1/performance", params={"since": "2024-08-08"})
    ] == [
        "2024-08-09",
        "2024-08-08",
    ]
    assert len(await api.data("/v1/performance", params={"until": "2024-07-05"})) == 5
    assert await api.data("/v1/performance", params={"since": "2025-01-01"}) == []


async def test_a_new_trade_is_served_at_once_not_from_a_cached_page(
    api: Api, history: AsyncEngine
) -> None:
    await brain_state.insert_history(history, trade_count=10)
    for _ in range(3):  # the same page, asked again and again, is served from the cache
        first = (await api.get("/v1/trades", params={"limit": 5})).json()["data"]
    assert [t["id"] for t in first] == [10, 9, 8, 7, 6]
    newer = brain_state.trade_rows(11)[-1] | {"executed_at": datetime(2030, 1, 1, tzinfo=UTC)}
    await brain_state.insert_rows(history, trades, [newer])
    again = (await api.get("/v1/trades", params={"limit": 5})).json()["data"]
    assert [t["id"] for t in again] == [11, 10, 9, 8, 7]
    await brain_state.insert_history(history, days=2)
    assert len(await api.data("/v1/performance")) == 2


async def test_data_version_changes_exactly_when_the_history_does(
    history: AsyncEngine, history_url: str
) -> None:
    reader_engine = create_engine(history_url, read_only=True)
    version = DataVersion(reader_engine)
    try:
        before = await version.current()
        assert before is not None
        assert await version.current() == before
        await brain_state.insert_history(history, trade_count=1)
        after = await version.current()
        assert after is not None
        assert after != before
        assert await version.current() == after
    finally:
        await version.close()
        await reader_engine.dispose()
