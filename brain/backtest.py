"""``tradingbrain backtest``: the brain's own engine over candle files, as fast as it goes, on
scratch databases, with a progress bar and a report. There is no second engine."""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rich.progress import Progress
from sqlalchemy import func, select

from brain.engine import TradingEngine
from brain.feeds.replay import ReplayFeed
from brain.models import CandleBatch
from brain.process import run_brain
from shared.db import tables
from shared.db.engine import create_engine
from shared.settings import Settings
from shared.timeutil import to_iso


@dataclass(slots=True)
class BacktestReport:
    first_candle: datetime | None = None
    last_candle: datetime | None = None
    steps: int = 0
    starting_value: float = 0.0
    final_value: float = 0.0
    peak_value: float = 0.0
    max_drawdown_pct: float = 0.0  # percent
    trades: int = 0
    wins: int = 0
    losses: int = 0
    realized_pnl: float = 0.0
    fees: float = 0.0
    wall_seconds: float = 0.0
    step_ms_p50: float = 0.0
    step_ms_p99: float = 0.0

    def observe(self, engine: TradingEngine, batch: CandleBatch, _elapsed: float) -> None:
        value = engine.value()
        self.first_candle = self.first_candle or batch.close_time
        self.last_candle = batch.close_time
        self.peak_value = max(self.peak_value, value)
        if self.peak_value > 0:
            drawdown = (self.peak_value - value) / self.peak_value * 100
            self.max_drawdown_pct = max(self.max_drawdown_pct, drawdown)

    def rows(self) -> list[tuple[str, str]]:
        closed = self.wins + self.losses
        ret = (self.final_value / self.starting_value - 1) * 100 if self.starting_value else 0.0
        return [
            ("period", f"{_iso(self.first_candle)} .. {_iso(self.last_candle)}"),
            ("candle steps", f"{self.steps:,}"),
            ("trades", f"{self.trades:,} ({closed:,} closed: {self.wins} won, {self.losses} lost)"),
            ("win rate", f"{self.wins / closed:.1%}" if closed else "n/a"),
            ("realized P&L", f"{self.realized_pnl:+,.2f} USDT"),
            ("fees", f"{self.fees:,.2f} USDT"),
            ("value", f"{self.starting_value:,.2f} -> {self.final_value:,.2f} USDT ({ret:+.2f}%)"),
            ("max drawdown", f"{self.max_drawdown_pct:.2f}%"),
            (
                "speed",
                f"{self.wall_seconds:.1f} s, step p50 {self.step_ms_p50:.2f} ms, "
                f"p99 {self.step_ms_p99:.2f} ms",
            ),
        ]


def _iso(moment: datetime | None) -> str:
    return to_iso(moment) if moment else "-"


def scratch_settings(settings: Settings, scratch: Path) -> Settings:
    """The same settings on scratch SQLite files, so a backtest never touches live state."""
    return dataclasses.replace(
        settings,
        store=dataclasses.replace(
            settings.store, backend="sqlite", sqlite_path=str(scratch / "state.db")
        ),
        database=dataclasses.replace(settings.database, sqlite_path=str(scratch / "history.db")),
        secrets=dataclasses.replace(settings.secrets, database_url=None),
        market=dataclasses.replace(settings.market, feed="replay", replay_speed=0.0),
    )


async def run_backtest(settings: Settings, scratch: Path, *, progress: bool) -> BacktestReport:
    settings = scratch_settings(settings, scratch)
    market = settings.market
    feed = ReplayFeed(Path(market.replay_dir), market.symbols, market.timeframe, speed=0.0)
    report = BacktestReport(starting_value=settings.paper.starting_cash)
    started = time.perf_counter()
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("backtest", total=len(feed))

        def observe(engine: TradingEngine, batch: CandleBatch, elapsed: float) -> None:
            report.observe(engine, batch, elapsed)
            bar.advance(task)

        result = await run_brain(
            settings, asyncio.Event(), exit_at_end=True, on_step=observe, feed=feed
        )
    report.wall_seconds = time.perf_counter() - started
    report.steps = result.steps
    if result.step_seconds:
        quantiles = statistics.quantiles(result.step_seconds, n=100, method="inclusive")
        report.step_ms_p50, report.step_ms_p99 = quantiles[49] * 1000, quantiles[98] * 1000
    assert result.engine is not None
    report.final_value = result.engine.value()
    report.realized_pnl = result.engine.portfolio.realized_pnl
    report.fees = result.engine.portfolio.fees_paid
    await _count_trades(settings, report)
    return report


async def _count_trades(settings: Settings, report: BacktestReport) -> None:
    sql = create_engine(f"sqlite+aiosqlite:///{settings.database.sqlite_path}", read_only=True)
    try:
        async with sql.connect() as conn:
            pnl = tables.trades.c.pnl
            count = select(func.count()).select_from(tables.trades)
            report.trades = (await conn.execute(count)).scalar_one()
            report.wins = (await conn.execute(count.where(pnl >= 0))).scalar_one()
            report.losses = (await conn.execute(count.where(pnl < 0))).scalar_one()
    finally:
        await sql.dispose()
