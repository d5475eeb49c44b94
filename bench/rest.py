"""REST benchmark of the Data API: wrk against a real `tradingbrain api` on loopback.

    .venv/bin/python bench/rest.py [--duration 10] [--trades 100000] [--backend sqlite|redis]
                                   [--json]

In one run, each for ``--duration`` seconds after a 2 s warm-up (1 and 2 alternate for
``--rounds`` rounds, and the median round is reported, as a shared CPU's speed drifts):

1. a bare Starlette app (one route returning a fixed body, the size of /v1/portfolio's) under
   the same uvicorn settings: the ceiling for this machine, HTTP stack and load generator;
2. ``GET /v1/portfolio`` through the whole API (auth, metrics, envelope, snapshot cache), one
   worker, at ``--connections`` (64);
3. ``GET /v1/trades?limit=500`` over ``--trades`` (100,000) trades in the SQLite history (or
   DATABASE_URL when set), at ``--trade-connections`` (16).

With 2 or more cores the server is pinned to core 0 and wrk to core 1 (taskset), so the load
generator does not steal the server's CPU. Loopback only; temporary files are removed after.
wrk comes from Debian (``apt-get install wrk``); see docs/benchmarks.md for figures.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _common import (  # noqa: E402 - bench/ is the script's folder
    HOST,
    api_env,
    core_pair,
    delete_store_keys,
    free_port,
    machine,
    pinned,
    server,
    tradingbrain_script,
)

from shared import jsonutil  # noqa: E402
from shared.config import load_settings  # noqa: E402
from shared.db.engine import create_engine  # noqa: E402
from shared.db.migrate import upgrade  # noqa: E402
from shared.db.tables import trades  # noqa: E402
from shared.store.base import SnapshotName  # noqa: E402
from shared.store.factory import open_store  # noqa: E402

KEY = "bench-" + uuid.uuid4().hex
WARMUP = 2.0
PORTFOLIO = {
    "total_value": 215.5,
    "cash": 180.0,
    "unrealized_pnl": -2.3,
    "position_count": 2,
    "allocation": {"cash_pct": 83.5, "positions_pct": 16.5},
    "realized_pnl": 17.8,
    "starting_cash": 200.0,
}
# The bare endpoint's body: the same bytes /v1/portfolio answers with.
BARE_BODY = jsonutil.dumps(
    {
        "data": PORTFOLIO,
        "meta": {"timestamp": "2026-02-09T03:15:00Z", "mode": "paper", "version": "0.1.0"},
    }
)


async def _bare(request: Request) -> Response:
    return Response(BARE_BODY, media_type="application/json")


def bare_app() -> Starlette:
    """The baseline: Starlette, one route, a fixed body, no middleware."""
    return Starlette(routes=[Route("/bare", _bare)])


# Setup -------------------------------------------------------------------------------------


def trade_rows(count: int) -> Iterator[list[dict[str, Any]]]:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    symbols = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "DOGE/USDT", "LTC/USDT")
    batch: list[dict[str, Any]] = []
    for index in range(count):
        closing = index % 2 == 1
        batch.append(
            {
                "symbol": symbols[(index // 2) % len(symbols)],
                "action": "SELL" if closing else "BUY",
                "qty": 0.01 + (index % 97) * 0.001,
                "price": 100.0 + index % 1000,
                "fee": 0.1,
                "pnl": 1.25 if closing else None,
                "pnl_pct": 0.8 if closing else None,
                "strategy_version": "v20240101_010000",
                "executed_at": start + timedelta(minutes=5 * index),
            }
        )
        if len(batch) == 10_000:
            yield batch
            batch = []
    if batch:
        yield batch


async def prepare(env: dict[str, str], trade_count: int) -> None:
    """The brain's side: a migrated history with the trades, and published snapshots."""
    engine = create_engine(env["DATABASE_URL"])
    try:
        await upgrade(engine)
        async with engine.begin() as conn:
            await conn.execute(trades.delete())
            for batch in trade_rows(trade_count):
                await conn.execute(insert(trades), batch)
    finally:
        await engine.dispose()
    settings = load_settings(env=env, dotenv_path=None)
    store = await open_store(settings)
    try:
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        await store.snapshots.write(
            {
                SnapshotName.PORTFOLIO: PORTFOLIO,
                SnapshotName.SYSTEM: {"status": "running", "mode": "paper", "started_at": now},
                SnapshotName.HEARTBEAT: {"at": now, "pid": os.getpid(), "market_time": None},
            }
        )
    finally:
        await store.close()


# Load ----------------------------------------------------------------------------------------


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip()).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


# Every request a different `until` (microseconds apart, far in the future: the same rows), so
# no two requests share a cached page: the cost of reading and encoding 500 rows each time.
DISTINCT_UNTIL_LUA = """
counter = 0
request = function()
  counter = counter + 1
  local path = string.format("%s&until=2099-01-01T00:00:00.%06dZ", wrk.path, counter % 1000000)
  return wrk.format(nil, path)
end
"""


def wrk(
    url: str,
    connections: int,
    duration: float,
    core: int | None,
    headers: dict[str, str],
    *,
    script: Path | None = None,
) -> dict[str, Any]:
    """One wrk run (after a warm-up run); req/s, latency percentiles in ms, errors."""
    header_args = [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
    base = ["wrk", "-t1", f"-c{connections}", "--latency", *header_args]
    if script is not None:
        base += ["-s", str(script)]
    subprocess.run(
        pinned(core, [*base, f"-d{WARMUP:g}s", url]), capture_output=True, check=True, timeout=60
    )
    done = subprocess.run(
        pinned(core, [*base, f"-d{duration:g}s", url]),
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 60,
    )
    out = done.stdout
    result: dict[str, Any] = {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
    }
    for label in ("50", "75", "90", "99"):
        found = re.search(rf"^\s+{label}%\s+(\S+)$", out, re.M)
        result[f"p{label}_ms"] = _ms(found.group(1)) if found else None
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)$", out, re.M)
    result["non_2xx"] = int(non_2xx.group(1)) if non_2xx else 0
    result["socket_errors"] = errors.group(1) if errors else None
    return result


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(runs, key=lambda run: run["requests_per_s"])
    return ordered[len(ordered) // 2]


def versions() -> dict[str, str]:
    """uvicorn's (with its HTTP parser and event loop) and wrk's."""
    import uvicorn

    try:
        import httptools  # noqa: F401

        http = "httptools"
    except ImportError:
        http = "h11"
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    version = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    return {
        "uvicorn": f"{uvicorn.__version__} ({http}, {loop})",
        "wrk": (version.stdout or version.stderr).split("[")[0].strip(),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    server_core, wrk_core = core_pair() or (None, None)
    results: dict[str, Any] = {"machine": machine(**versions()), "settings": vars(args).copy()}
    auth = {"Authorization": f"Bearer {KEY}"}
    with tempfile.TemporaryDirectory(prefix="tb-bench-rest-") as tmp:
        work = Path(tmp)
        env = api_env(
            work,
            args.backend,
            KEY,
            database_url=os.environ.get("DATABASE_URL"),
            pythonpath=os.environ.get("PYTHONPATH"),  # e.g. httptools from a --target install
        )
        for name in ("DATABASE_URL", "REDIS_URL"):
            if not re.search(r"@?(127\.0\.0\.1|localhost|\[::1\])[:/]", env[name]) and not env[
                name
            ].startswith("sqlite"):
                raise SystemExit(f"{name} must point at loopback for a benchmark")
        results["settings"]["history"] = env["DATABASE_URL"].split(":", 1)[0]
        started = time.monotonic()
        asyncio.run(prepare(env, args.trades))
        results["setup_s"] = round(time.monotonic() - started, 1)
        bare_base = f"http://{HOST}:{free_port()}"
        base = f"http://{HOST}:{free_port()}"
        bare = [sys.executable, "-m", "uvicorn", "--factory", "bench.rest:bare_app", "--host"]
        bare += [HOST, "--port", bare_base.rsplit(":", 1)[1], "--no-access-log"]
        bare += ["--app-dir", str(Path(__file__).resolve().parent)]  # where _common is
        api = [tradingbrain_script(), "api", "--host", HOST, "--port", base.rsplit(":", 1)[1]]
        api += ["--workers", "1"]
        lua = work / "distinct_until.lua"
        lua.write_text(DISTINCT_UNTIL_LUA)
        try:
            # Both servers idle on the same core; only one is under load at a time. Bare and
            # /v1/portfolio alternate for --rounds rounds, so drift in a shared CPU's speed
            # hits both alike; each figure is the median round (by req/s).
            serve = functools.partial(server, headers=auth, status=200)  # ready: 200 with the key
            with (
                serve(pinned(server_core, bare), env, f"{bare_base}/bare", work / "bare.log"),
                serve(pinned(server_core, api), env, f"{base}/v1/portfolio", work / "api.log"),
            ):
                rounds: dict[str, list[dict[str, Any]]] = {"bare": [], "portfolio": []}
                for _ in range(args.rounds):
                    rounds["bare"].append(
                        wrk(f"{bare_base}/bare", args.connections, args.duration, wrk_core, {})
                    )
                    rounds["portfolio"].append(
                        wrk(f"{base}/v1/portfolio", args.connections, args.duration, wrk_core, auth)
                    )
                for name, runs in rounds.items():
                    results[name] = median_run(runs)
                    results[f"{name}_rounds_per_s"] = [round(r["requests_per_s"]) for r in runs]
                results["portfolio_vs_bare_rounds"] = [
                    round(p["requests_per_s"] / b["requests_per_s"], 3)
                    for b, p in zip(rounds["bare"], rounds["portfolio"], strict=True)
                ]
                trades_url = f"{base}/v1/trades?limit=500"
                connections = args.trade_connections
                results["trades_limit_500"] = wrk(
                    trades_url, connections, args.duration, wrk_core, auth
                )
                results["trades_limit_500_uncached"] = wrk(
                    trades_url, connections, args.duration, wrk_core, auth, script=lua
                )
        finally:
            if args.backend == "redis":
                asyncio.run(delete_store_keys(env))
    results["portfolio_vs_bare"] = round(
        results["portfolio"]["requests_per_s"] / results["bare"]["requests_per_s"], 3
    )
    return results


def table(results: dict[str, Any]) -> str:
    settings = results["settings"]
    lines = [
        "| endpoint | connections | req/s | p50 ms | p99 ms | non-2xx |",
        "|---|---|---|---|---|---|",
    ]
    rows = [
        ("bare Starlette (fixed body)", "bare", settings["connections"]),
        ("/v1/portfolio", "portfolio", settings["connections"]),
        ("/v1/trades?limit=500", "trades_limit_500", settings["trade_connections"]),
        (
            "/v1/trades?limit=500, every request a cache miss",
            "trades_limit_500_uncached",
            settings["trade_connections"],
        ),
    ]
    for label, key, connections in rows:
        r = results[key]
        lines.append(
            f"| {label} | {connections} | {r['requests_per_s']:,.0f} | {r['p50_ms']:.2f} "
            f"| {r['p99_ms']:.2f} | {r['non_2xx']} |"
        )
    lines.append("")
    lines.append(
        f"/v1/portfolio at {results['portfolio_vs_bare']:.0%} of the bare endpoint (median "
        f"rounds); per round: {results['portfolio_vs_bare_rounds']}, bare req/s "
        f"{results['bare_rounds_per_s']}, portfolio req/s {results['portfolio_rounds_per_s']}"
    )
    lines.append(f"machine: {json.dumps(results['machine'])}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run (max 60)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="bare/portfolio rounds (1-9)")
    parser.add_argument("--trade-connections", type=int, default=16)
    parser.add_argument("--trades", type=int, default=100_000)
    parser.add_argument("--backend", choices=["sqlite", "redis"], default="sqlite")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not 1 <= args.duration <= 60 or not 1 <= args.connections <= 1024:
        parser.error("--duration must be 1-60 s and --connections 1-1024")
    if not 1 <= args.rounds <= 9:
        parser.error("--rounds must be 1-9")
    if not 0 < args.trades <= 2_000_000:
        parser.error("--trades must be 1 to 2,000,000")
    results = run(args)
    print(json.dumps(results, indent=2) if args.json else table(results))


if __name__ == "__main__":
    main()
