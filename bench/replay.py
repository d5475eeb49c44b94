"""Full-speed replay of the shipped three weeks (6 pairs x 6,048 candles) through the whole
brain, events and snapshots published, on each store backend. Loopback only, bounded.

    .venv/bin/python bench/replay.py [--backend sqlite|redis|both] [--no-orchestrator]

Prints wall time, per-candle step latency (p50/p99/max: the engine's work from a batch of
candles to its decisions) and the commit lag (steps per transaction of the group-commit writer).
With the orchestrator (the default settings), also the 21 nightly cycles' wall time: the replay
waits for each, so they add to the wall time but not to any step.
Goals (issue 3): under 20 s for the replay, step p99 under 10 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from _common import delete_prefix, machine  # bench/ is the script's folder

from brain.process import run_brain
from shared.config import load_settings

ROOT = Path(__file__).resolve().parents[1]
REPLAY_DIR = ROOT / "data" / "market" / "binance-spot-5m-2024-07-22_2024-08-11"


async def replay(
    backend: str, workdir: Path, redis_url: str, *, orchestrator: bool
) -> dict[str, float]:
    prefix = f"tbbench:{uuid.uuid4().hex[:8]}"
    env = {
        "TB_STORE__BACKEND": backend,
        "TB_STORE__SQLITE_PATH": str(workdir / "state.db"),
        "TB_STORE__KEY_PREFIX": prefix,
        "TB_DATABASE__SQLITE_PATH": str(workdir / "history.db"),
        "TB_MARKET__REPLAY_DIR": str(REPLAY_DIR),
        "TB_MARKET__REPLAY_SPEED": "0",
        "REDIS_URL": redis_url,
        "TB_ORCHESTRATOR__ENABLED": str(orchestrator).lower(),
    }
    settings = load_settings(env=env, dotenv_path=None)
    started = time.perf_counter()
    result = await run_brain(settings, asyncio.Event(), exit_at_end=True)
    wall = time.perf_counter() - started

    if backend == "redis":
        await delete_prefix(redis_url, prefix)
    steps = [s * 1000 for s in result.step_seconds]
    q = statistics.quantiles(steps, n=100, method="inclusive")
    assert result.engine is not None
    return {
        "steps": float(result.steps),
        "wall_s": wall,
        "steps_per_s": result.steps / wall,
        "step_p50_ms": q[49],
        "step_p99_ms": q[98],
        "step_max_ms": max(steps),
        "final_value": result.engine.value(),
        "cycles": float(len(result.cycle_seconds)),
        "cycles_s": sum(result.cycle_seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "redis", "both"], default="both")
    parser.add_argument(
        "--workdir", type=Path, help="keep the databases here (an API can serve them)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON line per backend")
    parser.add_argument(
        "--no-orchestrator", action="store_true", help="the trading loop alone, no nightly cycle"
    )
    args = parser.parse_args()
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    backends = ["sqlite", "redis"] if args.backend == "both" else [args.backend]
    cycles = not args.no_orchestrator
    if not args.json:
        print("  ".join(f"{key}={value}" for key, value in machine().items()))
    for backend in backends:
        if args.workdir is not None:
            figures = asyncio.run(replay(backend, args.workdir, redis_url, orchestrator=cycles))
        else:
            with tempfile.TemporaryDirectory(prefix="tb-bench-replay-") as scratch:
                figures = asyncio.run(
                    replay(backend, Path(scratch), redis_url, orchestrator=cycles)
                )
        if args.json:
            print(json.dumps({"backend": backend, **figures}))
            continue
        line = "  ".join(
            f"{key}={value:,.2f}" if isinstance(value, float) else f"{key}={value}"
            for key, value in figures.items()
        )
        print(f"{backend:6s} {line}")


if __name__ == "__main__":
    main()
