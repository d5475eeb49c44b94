"""The brain process: start-up, the candle loop, and a graceful stop.

Reads top to bottom like uvicorn's server: open what it needs (SQL with migrations, the store,
the feed), recover, announce ``system_online``, run the loop while background tasks relay
events, publish snapshots and beat the heart; on a stop request finish the step in hand, announce
``system_shutdown``, give the background tasks ``shutdown_timeout`` to drain, then cancel them.
With TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID set, Telegram alerts and commands run alongside
(``brain.telegram.service``): commands stop before the engine does, the alert relay last.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from dataclasses import dataclass, field

from brain.engine import TradingEngine
from brain.engine_state import EngineState
from brain.feeds.base import Feed
from brain.feeds.factory import open_feed
from brain.ledger import Ledger
from brain.models import CandleBatch
from brain.notifier import Notifier
from brain.orchestrator.cycle import Orchestrator
from brain.orchestrator.factory import history_size, open_orchestrator
from brain.publisher import Docs, Heartbeat, SnapshotPublisher
from brain.telegram.service import TelegramService
from brain.writer import StepWriter
from shared.db.engine import create_engine, database_url
from shared.db.migrate import upgrade
from shared.outbox import OutboxRelay
from shared.settings import Settings
from shared.store.factory import open_store

log = logging.getLogger(__name__)

# Called after each live step with the engine, the batch and the step's wall seconds.
StepObserver = Callable[[TradingEngine, CandleBatch, float], None]


@dataclass(slots=True)
class RunResult:
    """What a run did, for the backtest's report and for tests."""

    steps: int = 0
    step_seconds: list[float] = field(default_factory=list)
    cycle_seconds: list[float] = field(
        default_factory=list
    )  # the cycles the market clock waited for
    engine: TradingEngine | None = None


async def run_brain(  # noqa: PLR0915 (start-up reads top to bottom, like uvicorn's)
    settings: Settings,
    stop: asyncio.Event,
    *,
    exit_at_end: bool | None = None,
    on_step: StepObserver | None = None,
    feed: Feed | None = None,
    telegram: bool | None = None,
) -> RunResult:
    """Run the brain until ``stop`` is set (or, with ``exit_at_end``, the feed runs out).
    ``feed`` replaces the configured one (a backtest brings its own). ``telegram``: serve
    alerts and commands when TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID are set; by default
    only with the configured feed, so a backtest never alerts."""
    telegram = feed is None if telegram is None else telegram
    exit_at_end = settings.market.replay_exit_at_end if exit_at_end is None else exit_at_end
    sql = create_engine(database_url(settings))
    await upgrade(sql)
    store = await open_store(settings)
    ledger, notifier = Ledger(sql), Notifier()
    publisher = SnapshotPublisher(
        store.snapshots,
        interval=settings.brain.snapshot_interval,
        retry_max=settings.outbox.retry_max,
    )
    relay = OutboxRelay(sql, store.events, settings.outbox)

    def committed(docs: Docs | None) -> None:
        relay.wake()
        if docs is not None:
            publisher.update(docs)

    writer = StepWriter(
        ledger,
        committed,
        max_pending=settings.brain.max_pending_steps,
        retry_initial=settings.outbox.retry_initial,
        retry_max=settings.outbox.retry_max,
    )
    state = await EngineState.load(ledger, settings, notifier)
    orchestrator = open_orchestrator(settings, sql, notifier, saved=state.orchestrator)
    engine = TradingEngine(
        settings,
        ledger,
        notifier,
        writer,
        state,
        companion=orchestrator,
        history=history_size(settings),
    )
    if feed is None:
        feed = open_feed(
            settings.market,
            on_lost=engine.feed_lost,
            on_recovered=engine.feed_recovered,
            history=history_size(settings),  # enough for the optimiser after a restart
        )
    heartbeat = Heartbeat(
        store.snapshots, settings.brain.heartbeat_interval, lambda: state.checkpoint
    )
    background_stop = asyncio.Event()
    background = [
        asyncio.create_task(relay.run(background_stop), name="outbox-relay"),
        asyncio.create_task(publisher.run(background_stop), name="snapshot-publisher"),
        asyncio.create_task(heartbeat.run(background_stop), name="heartbeat"),
    ]
    writing = asyncio.create_task(writer.run(), name="step-writer")
    result = RunResult(engine=engine)
    # Telegram only reads the event log (and commands the engine): it never delays trading.
    chat = TelegramService.from_settings(settings, store.events, engine, enabled=telegram)
    try:
        await chat.start()
        await engine.start()
        await _trade(engine, orchestrator, feed, stop, result=result, on_step=on_step)
        if not stop.is_set() and not exit_at_end:
            log.info("the feed has no more candles; serving the final state until stopped")
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait([stopped, writing], return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
    finally:
        try:
            await chat.stop_commands()  # no command may act on a stopping engine
            await orchestrator.aclose()  # an unfinished cycle committed nothing
            if not writing.done():
                await engine.stop()
                await writer.flush()
        finally:
            writing.cancel()
            background_stop.set()
            await _finish([*background, writing], settings.brain.shutdown_timeout)
            await chat.stop()  # after the outbox relay: system_shutdown is in the log
            await feed.aclose()
            await store.close()
            await sql.dispose()
    return result


async def _trade(
    engine: TradingEngine,
    orchestrator: Orchestrator,
    feed: Feed,
    stop: asyncio.Event,
    *,
    result: RunResult,
    on_step: StepObserver | None,
) -> None:
    loop = asyncio.get_running_loop()
    # Only a live exchange's clock runs on without us; replayed and synthetic time waits for
    # the nightly cycle, so those runs stay deterministic.
    wait_for_cycles = feed.name != "exchange"
    async for batch in _until(feed.batches(after=engine.checkpoint), stop):
        started = loop.time()
        if await orchestrator.before_step(engine, batch, wait=wait_for_cycles, stop=stop):
            result.cycle_seconds.append(loop.time() - started)
            started = loop.time()
        if stop.is_set():
            return  # the batch is not traded: a restart reads it again
        await engine.step(batch)  # never cancelled half-way: stop is checked between steps
        elapsed = loop.time() - started
        result.steps += 1
        result.step_seconds.append(elapsed)
        if on_step is not None:
            on_step(engine, batch, elapsed)
        # A full-speed replay never waits on its feed: let the writer, the relay and the
        # publisher have their turn after every step rather than only when the queue is full.
        await asyncio.sleep(0)


async def _until(
    batches: AsyncIterator[CandleBatch], stop: asyncio.Event
) -> AsyncIterator[CandleBatch]:
    """The feed's batches until it ends or ``stop`` is set, whichever comes first; waiting for
    the next batch (a paced replay, a live exchange) is cut short by the stop."""
    stopped = asyncio.ensure_future(stop.wait())
    try:
        while True:
            following = asyncio.ensure_future(anext(batches))
            await asyncio.wait([following, stopped], return_when=asyncio.FIRST_COMPLETED)
            if stopped.done():
                following.cancel()
                with suppress(asyncio.CancelledError, StopAsyncIteration):
                    await following
                return
            try:
                batch = following.result()
            except StopAsyncIteration:
                return
            yield batch
    finally:
        stopped.cancel()


async def _finish(tasks: list[asyncio.Task[None]], grace: float) -> None:
    """Let the background tasks drain within ``grace`` seconds, then cancel what is left."""
    done, pending = await asyncio.wait(tasks, timeout=grace)
    for task in pending:
        log.warning("%s did not stop within %.1fs; cancelling it", task.get_name(), grace)
        task.cancel()
    for task in pending:
        with suppress(asyncio.CancelledError):
            await task
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed", task.get_name(), exc_info=task.exception())
