"""What a running brain leaves behind, written through the shared interfaces (never mocks):
snapshot documents in the store, with the shapes the brain publishes, and SQL history rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.tables import daily_performance, signals, trades
from shared.store.base import SnapshotName, Store
from shared.timeutil import to_iso, utc_now

SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
VERSION = "v20240801_010000"


def system_doc(
    *, status: str = "running", started_at: datetime | None = None, halted: bool = False
) -> dict[str, Any]:
    started = started_at or utc_now() - timedelta(hours=1)
    return {
        "status": status,
        "mode": "paper",
        "version": "0.1.0",
        "started_at": to_iso(started),
        "last_scan": to_iso(utc_now() - timedelta(minutes=1)),
        "paused": False,
        "halted": halted,
        "halt_reason": "daily loss limit" if halted else None,
        "feed": "replay",
        "market_time": "2024-08-05T15:30:00Z",
    }


def heartbeat_doc(at: datetime | None = None) -> dict[str, Any]:
    return {"at": to_iso(at or utc_now()), "pid": 4242, "market_time": "2024-08-05T15:30:00Z"}


PORTFOLIO = {
    "total_value": 215.5,
    "cash": 180.0,
    "unrealized_pnl": -2.3,
    "position_count": 2,
    "allocation": {"cash_pct": 83.5, "positions_pct": 16.5},
    "realized_pnl": 17.8,
    "starting_cash": 200.0,
}
POSITIONS = [
    {
        "symbol": "BTC/USDT",
        "qty": 0.0005,
        "entry_price": 45000.0,
        "current_price": 44800.0,
        "unrealized_pnl": -0.1,
        "unrealized_pnl_pct": -0.44,
        "stop_loss": 44100.0,
        "take_profit": 47700.0,
        "opened_at": "2024-08-05T12:00:00Z",
    },
    {
        "symbol": "ETH/USDT",
        "qty": 0.01,
        "entry_price": 2500.0,
        "current_price": 2520.0,
        "unrealized_pnl": 0.2,
        "unrealized_pnl_pct": 0.8,
        "stop_loss": None,
        "take_profit": None,
        "opened_at": "2024-08-05T13:00:00Z",
    },
]
RISK = {
    "limits": {
        "max_position_pct": 0.15,
        "max_positions": 5,
        "max_daily_loss_pct": 0.06,
        "max_drawdown_pct": 0.12,
        "max_daily_trades": 20,
    },
    "current": {
        "daily_pnl": -1.2,
        "daily_pnl_pct": -0.006,
        "daily_trades": 3,
        "consecutive_losses": 1,
        "drawdown_pct": 0.02,
        "halted": False,
        "halt_reason": None,
    },
}
MARKET = [
    {
        "symbol": symbol,
        "price": 44800.0 / (index + 1),
        "regime": "ranging",
        "trend": "neutral",
        "rsi": 52.3,
        "ema_fast": 44750.0 / (index + 1),
        "ema_slow": 44600.0 / (index + 1),
        "volume_ratio": 1.15,
        "signal": None,
        "scanned_at": "2024-08-05T15:30:00Z",
    }
    for index, symbol in enumerate(SYMBOLS)
]
STRATEGY = {
    "active": {
        "version": VERSION,
        "code_hash": "a1b2c3d4",
        "risk_tier": 1,
        "description": "EMA trend with RSI entries",
        "deployed_at": "2024-08-01T01:00:00Z",
    },
    "paper_test": {
        "version": "v20240802_010000",
        "status": "running",
        "risk_tier": 2,
        "days": 3,
        "started_at": "2024-08-02T01:00:00Z",
        "ends_at": "2024-08-05T01:00:00Z",
    },
    "recent_versions": [{"version": VERSION, "status": "active", "risk_tier": 1}],
}
AI_USAGE = {
    "today": {
        "total_tokens": 45000,
        "total_cost_usd": 0.21,
        "by_model": {
            "claude-opus-4-6": {"calls": 2, "tokens": 30000, "cost_usd": 0.18},
            "claude-sonnet-4-5-20250929": {"calls": 1, "tokens": 15000, "cost_usd": 0.03},
        },
        "budget_remaining": 1455000,
    }
}
BENCHMARKS = {
    "total_trades": 42,
    "win_rate": 0.62,
    "profit_factor": 1.85,
    "avg_win": 8.5,
    "avg_loss": -4.2,
    "max_drawdown": 0.08,
}


def full_state() -> dict[SnapshotName, Any]:
    return {
        SnapshotName.SYSTEM: system_doc(),
        SnapshotName.HEARTBEAT: heartbeat_doc(),
        SnapshotName.PORTFOLIO: PORTFOLIO,
        SnapshotName.POSITIONS: POSITIONS,
        SnapshotName.RISK: RISK,
        SnapshotName.MARKET: MARKET,
        SnapshotName.STRATEGY: STRATEGY,
        SnapshotName.AI_USAGE: AI_USAGE,
        SnapshotName.BENCHMARKS: BENCHMARKS,
    }


async def publish_state(store: Store) -> int:
    """Every snapshot a running brain publishes, in one write; returns its revision."""
    return await store.snapshots.write(full_state())


BASE_TIME = datetime(2024, 8, 1, tzinfo=UTC)


def trade_rows(count: int, *, start: datetime = BASE_TIME, step: timedelta = timedelta(minutes=5)):
    """Alternating opening BUYs (no pnl) and closing SELLs (pnl set), over SYMBOLS.

    Every fifth trade shares the timestamp of the one before, so ties are exercised."""
    rows: list[dict[str, Any]] = []
    moment = start
    for index in range(count):
        if index % 5 != 4:
            moment += step
        closing = index % 2 == 1
        rows.append(
            {
                "symbol": SYMBOLS[(index // 2) % len(SYMBOLS)],
                "action": "SELL" if closing else "BUY",
                "qty": 0.01 + index * 0.0001,
                "price": 100.0 + index,
                "fee": 0.1,
                "pnl": (1.5 if index % 4 == 1 else -0.5) if closing else None,
                "pnl_pct": (1.5 if index % 4 == 1 else -0.5) if closing else None,
                "strategy_version": VERSION,
                "executed_at": moment,
            }
        )
    return rows


def signal_rows(count: int, *, start: datetime = BASE_TIME) -> list[dict[str, Any]]:
    actions = ("BUY", "SELL", "CLOSE")
    rows = []
    for index in range(count):
        executed = index % 3 != 2
        rows.append(
            {
                "symbol": SYMBOLS[index % len(SYMBOLS)],
                "action": actions[index % len(actions)],
                "confidence": round(0.5 + (index % 5) / 10, 2),
                "strategy_version": VERSION,
                "executed": executed,
                "rejected_reason": None if executed else "max positions reached",
                "created_at": start + timedelta(minutes=index * 5),
            }
        )
    return rows


def performance_rows(days: int, *, first: date = date(2024, 7, 1)) -> list[dict[str, Any]]:
    return [
        {
            "date": first + timedelta(days=index),
            "portfolio_value": 200.0 + index,
            "daily_pnl": 1.0 if index % 2 else -0.5,
            "daily_pnl_pct": 0.5 if index % 2 else -0.25,
            "trade_count": 4,
            "win_count": 3,
            "loss_count": 1,
            "fees": 0.4,
        }
        for index in range(days)
    ]


async def insert_rows(engine: AsyncEngine, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    async with engine.begin() as conn:
        for start in range(0, len(rows), 5000):
            await conn.execute(insert(table), list(rows[start : start + 5000]))


async def insert_history(
    engine: AsyncEngine, *, trade_count: int = 0, signal_count: int = 0, days: int = 0
) -> None:
    if trade_count:
        await insert_rows(engine, trades, trade_rows(trade_count))
    if signal_count:
        await insert_rows(engine, signals, signal_rows(signal_count))
    if days:
        await insert_rows(engine, daily_performance, performance_rows(days))
