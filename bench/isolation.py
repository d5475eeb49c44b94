"""Isolation: does API load slow the brain? The brain (a full-speed replay of the shipped three
weeks) runs pinned to one core, the Data API (one worker) and a fixed-rate load generator on
the other; the brain's per-candle step latency is compared with and without the load.

    .venv/bin/python bench/isolation.py [--rate 2000] [--connections 32]

Loopback only and bounded: the load starts when the API first serves the brain's portfolio and
stops when the replay ends. Needs `taskset`
(util-linux) and two cores. Goal (issue 5): step p99 under load within 10 % of without.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import (  # bench/ is the script's folder
    HOST,
    core_pair,
    free_port,
    pinned,
    server,
    tradingbrain_script,
)

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


async def wait_for_portfolio(port: int, key: str, seconds: float = 30.0) -> None:
    """Until the API serves the brain's portfolio (the brain has started and published)."""
    request = f"GET /v1/portfolio HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
            writer.write(f"{request}Connection: close\r\n\r\n".encode())
            answer = await reader.read()
            writer.close()
            if answer.startswith(b"HTTP/1.1 200"):
                return
        except OSError:
            pass
        await asyncio.sleep(0.01)
    raise TimeoutError(f"the API on {port} never served the portfolio")


class FixedRateLoad:
    """Open-loop load: each connection sends on its own schedule, so the offered rate stays
    ``rate`` whatever the latency; counts answers and their latencies."""

    def __init__(self, port: int, key: str, rate: float, connections: int) -> None:
        self._request = (
            f"GET /v1/portfolio HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\r\n"
        ).encode()
        self._port = port
        self._period = connections / rate
        self._connections = connections
        self.latencies: list[float] = []
        self.errors = 0

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(self._connection(i, stop) for i in range(self._connections)))

    async def _connection(self, index: int, stop: asyncio.Event) -> None:
        reader, writer = await asyncio.open_connection(HOST, self._port)
        loop = asyncio.get_running_loop()
        next_at = loop.time() + index * self._period / self._connections
        try:
            while not stop.is_set():
                await asyncio.sleep(max(0.0, next_at - loop.time()))
                next_at += self._period
                sent = loop.time()
                writer.write(self._request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                await reader.readexactly(length)
                if not head.startswith(b"HTTP/1.1 2"):
                    self.errors += 1
                self.latencies.append(loop.time() - sent)
        finally:
            writer.close()


def replay_on(core: int, workdir: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        pinned(core, [str(BIN / "python"), "bench/replay.py", "--backend", "sqlite",
                      "--workdir", str(workdir), "--json"]),
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


async def scenario(
    loaded: bool, rate: float, connections: int, cores: tuple[int, int]
) -> dict[str, float]:
    brain_core, api_core = cores
    workdir = Path(tempfile.mkdtemp(prefix="tb-bench-isolation-"))
    key = secrets.token_urlsafe(32)
    port = free_port()
    env = {
        **os.environ,
        "API_KEY": key,
        "TB_STORE__SQLITE_PATH": str(workdir / "state.db"),
        "TB_DATABASE__SQLITE_PATH": str(workdir / "history.db"),
        "TB_API__PORT": str(port),
        "TB_API__HOST": HOST,
    }
    api = pinned(api_core, [tradingbrain_script(), "api"])
    try:
        with server(api, env, f"http://{HOST}:{port}/", workdir / "api.log", stop_timeout=20):
            brain = replay_on(brain_core, workdir, env)
            await wait_for_portfolio(port, key)  # the load starts once there is a brain to serve
            stop = asyncio.Event()
            load = FixedRateLoad(port, key, rate, connections)
            started = time.monotonic()
            generator = asyncio.create_task(load.run(stop)) if loaded else None
            out, _ = await asyncio.to_thread(brain.communicate)
            stop.set()
            if generator is not None:
                await generator
            elapsed = time.monotonic() - started
        figures: dict[str, float] = json.loads(out.strip().splitlines()[-1])
        figures.pop("backend", None)
        if loaded:
            ordered = sorted(load.latencies)
            figures["api_req_per_s"] = len(ordered) / elapsed
            figures["api_p99_ms"] = ordered[int(len(ordered) * 0.99)] * 1000 if ordered else 0.0
            figures["api_errors"] = float(load.errors)
        return figures
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    cores = core_pair()
    if cores is None:
        sys.exit("needs two cores and taskset")
    quiet = asyncio.run(scenario(False, args.rate, args.connections, cores))
    loaded = asyncio.run(scenario(True, args.rate, args.connections, cores))
    for name, figures in (("no API load", quiet), (f"API at {args.rate:.0f} req/s", loaded)):
        line = "  ".join(f"{key}={value:,.2f}" for key, value in figures.items())
        print(f"{name:22s} {line}")
    ratio = loaded["step_p99_ms"] / quiet["step_p99_ms"]
    print(f"step p99 under load / without: {ratio:.2f} (goal: at most 1.10)")


if __name__ == "__main__":
    main()
