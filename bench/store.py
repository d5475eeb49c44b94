"""Store benchmark: event log and snapshot throughput and latency on each backend, and the brain
path (SQL outbox -> OutboxRelay -> event log). Loopback only, bounded (about 30 s a backend).

    .venv/bin/python bench/store.py [--backend sqlite|redis|both] [--events N] [--json]

SQLite files live in a temporary directory; Redis is REDIS_URL (default redis://127.0.0.1:6379/0)
under a unique key prefix whose keys are deleted afterwards. Every reader is its own store
connection (SQLite: a read-only handle, as the API opens) in the same process and event loop.
See docs/benchmarks.md for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import redis.asyncio as aioredis
from _common import delete_prefix, machine  # bench/ is the script's folder
from redis.utils import HIREDIS_AVAILABLE

from shared import jsonutil
from shared.config import load_settings
from shared.db.engine import create_engine
from shared.db.migrate import upgrade
from shared.events import Event, EventName
from shared.outbox import OutboxRelay, add_event
from shared.settings import Settings
from shared.store.base import LOG_START, EventLog, SnapshotName, SnapshotStore, encode_docs
from shared.store.factory import DEFAULT_REDIS_URL, open_store
from shared.timeutil import utc_now

REDIS_URL = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
# A trade_executed payload (the catalog's fields, so the outbox accepts it).
TRADE: dict[str, Any] = jsonutil.loads(
    '{"trade_id": 1, "symbol": "BTC/USDT", "action": "BUY", "qty": 0.0125, "price": 64213.5,'
    ' "fee": 0.8, "pnl": null, "pnl_pct": null, "strategy_version": "v12"}'
)
# The snapshot documents: a portfolio, four positions, six tickers (about 1.4 KB of JSON).
PORTFOLIO = (
    '{"total_value": 10234.56, "cash": 5120.0, "positions_value": 5114.56, "daily_pnl": 42.1,'
    ' "daily_pnl_pct": 0.41, "total_pnl": 234.56, "total_pnl_pct": 2.35, "open_positions": 4}'
)
POSITION = (
    '{"side": "long", "qty": 0.25, "entry_price": 64000.5, "current_price": 64250.0,'
    ' "unrealized_pnl": 62.4, "stop_loss": 62000.0, "take_profit": 68000.0}'
)
TICKER = '{"price": 64250.0, "change_24h_pct": 1.83, "volume_24h": 1.2e9, "rsi": 55.2}'
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "ADA/USDT", "DOGE/USDT")
Results = dict[str, float]
# A follower's receive(): the send times of what it got, and whether everything has arrived.
Receive = Callable[[], Awaitable[tuple[list[float], bool]]]


def snapshot_docs() -> dict[SnapshotName, Any]:
    """A portfolio + positions + market set like the API serves."""
    return {
        SnapshotName.PORTFOLIO: jsonutil.loads(PORTFOLIO),
        SnapshotName.POSITIONS: [{"symbol": s, **jsonutil.loads(POSITION)} for s in SYMBOLS[:4]],
        SnapshotName.MARKET: {s: jsonutil.loads(TICKER) for s in SYMBOLS},
    }


def percentiles(latencies: list[float], prefix: str) -> Results:
    """p50/p95/p99/max in milliseconds (NaN when fewer than two samples)."""
    ms = sorted(x * 1000 for x in latencies)
    cuts = (
        statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else [float("nan")] * 99
    )
    return {
        f"{prefix} p50 ms": cuts[49],
        f"{prefix} p95 ms": cuts[94],
        f"{prefix} p99 ms": cuts[98],
        f"{prefix} max ms": ms[-1] if ms else float("nan"),
    }


async def paced(
    send: Callable[[int], Awaitable[None]], receive: Receive, total: int, rate: float
) -> tuple[list[float], float, float]:
    """send(0..total-1) at ``rate`` a second (0: back to back) while a follower task calls
    receive(); returns the latencies, the time from the first send to the last arrival, and the
    rate the sends achieved (below ``rate`` when a send takes longer than 1/rate)."""
    latencies: list[float] = []
    last = 0.0

    async def follow() -> None:
        nonlocal last
        while True:
            sent, done = await receive()
            last = time.time()
            latencies.extend(last - t for t in sent)
            if done:
                return

    follower = asyncio.create_task(follow())
    await asyncio.sleep(0.1)  # the follower is blocked in its first read
    start = time.time()
    for i in range(total):
        if rate and (delay := start + i / rate - time.time()) > 0:
            await asyncio.sleep(delay)
        await send(i)
    sent_rate = total / (time.time() - start)
    with contextlib.suppress(TimeoutError):  # the received count then falls short of the sent
        await asyncio.wait_for(follower, timeout=10)
    return latencies, last - start, sent_rate


def log_follower(
    log: EventLog, after: int, newest: int, sent_at: Callable[[Event], float]
) -> Receive:
    cursor = str(after)

    async def receive() -> tuple[list[float], bool]:
        nonlocal cursor
        batch = await log.read(cursor, count=500, block=1)
        cursor = batch[-1].id if batch else cursor
        return [sent_at(e) for e in batch], int(cursor) >= newest

    return receive


def snapshot_follower(
    snapshots: SnapshotStore, base: int, newest: int, sent: list[float], sets: list[int]
) -> Receive:
    """Follows changes(). A change set up to revision r reports every write up to r: a write
    coalesced into a later one is seen when that one is. sent[i]: write of revision base+i+1."""
    revision = base + len(sent)  # follow from the newest write so far

    async def receive() -> tuple[list[float], bool]:
        nonlocal revision
        changed = await snapshots.changes(revision, block=1)
        seen, revision = sent[revision - base : changed.revision - base], changed.revision
        sets.extend([revision] if seen else [])
        return seen, revision >= newest

    return receive


def settings_for(backend: str, sqlite_path: Path, prefix: str) -> Settings:
    overrides = {
        "TB_STORE__BACKEND": backend,
        "TB_STORE__SQLITE_PATH": str(sqlite_path),
        "TB_STORE__KEY_PREFIX": prefix,
        "TB_STORE__CONNECT_ATTEMPTS": "1",
    }
    return load_settings(env={**os.environ, **overrides}, dotenv_path=None)


async def bench_store(settings: Settings, n: int, out: Results) -> None:
    writer, reader = await open_store(settings), await open_store(settings, read_only=True)
    try:
        start = time.perf_counter()  # 1. append throughput, batches of 100
        for first in range(1, n + 1, 100):
            batch = [
                Event(str(s), EventName.TRADE_EXECUTED, TRADE, utc_now())
                for s in range(first, min(first + 100, n + 1))
            ]
            await writer.events.append(batch)
        out["append (batches of 100) events/s"] = n / (time.perf_counter() - start)

        start, read, after = time.perf_counter(), 0, LOG_START  # 2. catch-up read, count=500
        while batch := await reader.events.read(after, count=500):
            read, after = read + len(batch), batch[-1].id
        out["catch-up read (count=500) events/s"] = read / (time.perf_counter() - start)

        rate, seconds = 500, 4  # 3. live tail: one event at a time to a reader blocked in read()
        total = rate * seconds

        async def append_one(i: int) -> None:
            data = {**TRADE, "t": time.time()}
            await writer.events.append(
                [Event(str(n + 1 + i), EventName.TRADE_EXECUTED, data, utc_now())]
            )

        receive = log_follower(reader.events, n, n + total, lambda e: float(e.data["t"]))
        latencies, _, sent_rate = await paced(append_one, receive, total, rate)
        out |= {"live tail sent": total, "live tail sent/s": sent_rate}
        out["live tail received"] = len(latencies)
        out |= percentiles(latencies, "live tail")

        base = (await writer.snapshots.read()).revision  # 4. snapshot writes and a follower
        docs = snapshot_docs()
        out["snapshot set bytes"] = sum(len(d) for d in encode_docs(docs).values())
        sent: list[float] = []  # when write i (revision base + i + 1) began

        async def write(_: int) -> None:
            sent.append(time.time())
            await writer.snapshots.write(docs)

        for writes, rate, label in ((1000, 0, "snapshot unpaced"), (300, 100, "snapshot 100/s")):
            sets: list[int] = []
            newest = base + len(sent) + writes
            receive = snapshot_follower(reader.snapshots, base, newest, sent, sets)
            latencies, elapsed, _ = await paced(write, receive, writes, rate)
            if not rate:
                out["snapshot writes/s (follower attached)"] = writes / elapsed
            out |= {f"{label} writes seen": len(latencies), f"{label} change sets": len(sets)}
            out |= {k: v for k, v in percentiles(latencies, label).items() if "p95" not in k}
    finally:
        await writer.close()
        await reader.close()


async def bench_brain(settings: Settings, history: Path, n: int, out: Results) -> None:
    """5. add_event in a SQL transaction (SQLite history), OutboxRelay, a reader of the log."""
    engine = create_engine(f"sqlite+aiosqlite:///{history}")
    await upgrade(engine)
    store, reader = await open_store(settings), await open_store(settings, read_only=True)
    relay = OutboxRelay(engine, store.events, settings.outbox)
    stop = asyncio.Event()
    relay_task = asyncio.create_task(relay.run(stop))
    started: dict[str, float] = {}  # event id -> when its transaction began

    async def commit(_: int) -> None:
        t = time.time()
        async with engine.begin() as conn:
            started[await add_event(conn, EventName.TRADE_EXECUTED, TRADE)] = t
        relay.wake()

    try:
        sent = 0
        for total, rate, label in (
            (max(n // 10, 100), 0, "brain unpaced"),
            (600, 200, "brain 200/s"),
        ):
            receive = log_follower(reader.events, sent, sent + total, lambda e: started[e.id])
            latencies, elapsed, sent_rate = await paced(commit, receive, total, rate)
            sent += total
            if rate:
                out[f"{label} sent/s"] = sent_rate
            else:
                out["brain path events/s"] = len(latencies) / elapsed
            out |= {f"{label} received": len(latencies)} | percentiles(latencies, label)
    finally:
        stop.set()
        await relay_task
        await store.close()
        await reader.close()
        await engine.dispose()


async def redis_info() -> dict[str, str]:
    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        info = await client.info("server")
        aof = await client.config_get("appendonly")
        return {
            "redis_version": str(info["redis_version"]),
            "appendonly": str(aof.get("appendonly")),
        }
    except Exception as exc:
        return {"redis_version": f"unreachable ({type(exc).__name__})"}
    finally:
        await client.aclose()


async def bench_backend(backend: str, n: int, tmp: Path) -> Results:
    prefix = f"tbbench:{uuid.uuid4().hex[:12]}"
    out: Results = {}
    try:
        await bench_store(settings_for(backend, tmp / "store.db", f"{prefix}:log"), n, out)
        brain = settings_for(backend, tmp / "brain-store.db", f"{prefix}:brain")
        await bench_brain(brain, tmp / "history.db", n, out)
    finally:
        if backend == "redis":
            await delete_prefix(REDIS_URL, prefix)
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "redis", "both"], default="both")
    parser.add_argument("--events", type=int, default=20_000, help="events appended (<= 100000)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    n = max(1_000, min(args.events, 100_000))
    backends = ["sqlite", "redis"] if args.backend == "both" else [args.backend]
    host = urlparse(REDIS_URL).hostname
    if "redis" in backends and host not in (None, "localhost", "127.0.0.1", "::1"):
        raise SystemExit(f"REDIS_URL must be a loopback address for this benchmark, not {host}")
    header = machine(
        sqlite=sqlite3.sqlite_version,
        hiredis=HIREDIS_AVAILABLE,
        poll_interval=load_settings(dotenv_path=None).store.poll_interval,
        **await redis_info(),
    )
    if "redis" in backends and header["redis_version"].startswith("unreachable"):
        if args.backend == "redis":
            raise SystemExit(f"redis at {REDIS_URL} is {header['redis_version']}")
        print(f"skipping redis: {REDIS_URL} is {header['redis_version']}", file=sys.stderr)
        backends.remove("redis")
    results: dict[str, Results] = {}
    with tempfile.TemporaryDirectory(prefix="tbbench-") as tmp:
        for backend in backends:
            (Path(tmp) / backend).mkdir()
            results[backend] = await bench_backend(backend, n, Path(tmp) / backend)
    if args.json:
        clean = {
            b: {k: None if math.isnan(v) else v for k, v in r.items()} for b, r in results.items()
        }
        print(json.dumps({"machine": header, "events": n, "results": clean}, indent=2))
        return
    print("  ".join(f"{k}={v}" for k, v in header.items()) + f"  events={n}")
    labels = list(dict.fromkeys(label for r in results.values() for label in r))
    width = max(len(label) for label in labels) + 2
    print("".join([f"{'':{width}}", *(f"{b:>12}" for b in backends)]))
    for label in labels:
        cells = (results[b].get(label, float("nan")) for b in backends)
        print(
            f"{label:{width}}" + "".join(f"{v:>12,.1f}" if v % 1 else f"{v:>12,.0f}" for v in cells)
        )


if __name__ == "__main__":
    asyncio.run(main())
