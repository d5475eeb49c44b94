"""The snapshot documents the brain publishes, in the Data API plan's JSON shapes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from brain.models import Candle, Indicators
from shared.timeutil import to_iso

VERSION = "0.1.0"
MODE = "paper"


def _iso(moment: datetime | None) -> str | None:
    return to_iso(moment) if moment is not None else None


def system_view(
    *,
    status: str,
    started_at: datetime,
    last_scan: datetime | None,
    paused: bool,
    halted: bool,
    halt_reason: str | None,
    feed: str,
) -> dict[str, Any]:
    return {
        "status": status,
        "mode": MODE,
        "version": VERSION,
        "started_at": to_iso(started_at),
        "last_scan": _iso(last_scan),
        "paused": paused,
        "halted": halted,
        "halt_reason": halt_reason,
        "feed": feed,
        "market_time": _iso(last_scan),
    }


def market_view(
    latest: Mapping[str, tuple[Candle, Indicators | None, str | None]],
) -> list[dict[str, Any]]:
    """One entry per symbol: the last scan's price, indicators (null while warming up) and the
    signal it produced (null for none)."""
    views = []
    for symbol, (candle, ind, signal) in sorted(latest.items()):
        views.append(
            {
                "symbol": symbol,
                "price": candle.close,
                "regime": ind.regime if ind else None,
                "trend": ind.trend if ind else None,
                "rsi": ind.rsi if ind else None,
                "ema_fast": ind.ema_fast if ind else None,
                "ema_slow": ind.ema_slow if ind else None,
                "volume_ratio": ind.volume_ratio if ind else None,
                "atr": ind.atr if ind else None,
                "signal": signal,
                "scanned_at": to_iso(candle.close_time),
            }
        )
    return views


def paper_test_view(row: Any) -> dict[str, Any]:
    """A finished paper test (a paper_tests row), as /v1/strategy shows it."""
    return {
        "version": row.version,
        "status": row.status,
        "started_at": _iso(row.started_at),
        "ends_at": _iso(row.ends_at),
        "completed_at": _iso(row.completed_at),
        "results": row.results,
    }


def strategy_view(
    active: Any, recent: Sequence[Any], paper_test: Mapping[str, Any] | None
) -> dict[str, Any]:
    """``active`` and ``recent`` are rows of the strategy_versions table; ``paper_test`` the
    running test's view, or the last finished one's (null before the first)."""
    return {
        "active": None
        if active is None
        else {
            "version": active.version,
            "code_hash": active.code_hash,
            "risk_tier": active.risk_tier,
            "description": active.description,
            "parameters": active.parameters,
            "deployed_at": _iso(active.deployed_at),
        },
        "paper_test": None if paper_test is None else dict(paper_test),
        "recent_versions": [
            {
                "version": row.version,
                "code_hash": row.code_hash,
                "risk_tier": row.risk_tier,
                "status": row.status,
                "description": row.description,
                "created_at": _iso(row.created_at),
                "deployed_at": _iso(row.deployed_at),
                "retired_at": _iso(row.retired_at),
            }
            for row in recent
        ],
    }
