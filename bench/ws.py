"""WebSocket benchmark of /v1/events: fan-out latency and loss against a bare relay, and catch-up.

    .venv/bin/python bench/ws.py [--duration 10] [--scenarios 200x200,1000x50]
                                 [--catch-up 10000] [--backend redis|sqlite] [--json]

For each scenario ``CLIENTSxRATE`` (clients, events per second), in one run:

1. a bare relay: the same hub (one log reader, the same in-memory fan-out and bounded queues)
   behind a plain Starlette WebSocket route: no auth, no filters, no heartbeats, no metrics,
   no middleware of the API; served by uvicorn with the same WebSocket settings;
2. the whole API: ``tradingbrain api`` (one worker), clients authenticating with the header.

A producer appends events to the store at a fixed rate for ``--duration`` seconds (each
event's timestamp is the moment before its append); ``CLIENTS`` WebSocket clients, in a process
of their own, record every event's id and its end-to-end latency (receipt minus timestamp:
append, log read, fan-out, send, receipt). Loss is counted per client against the ids
produced. Then a client that reconnects ``--catch-up`` events behind is timed until it has them
all (three times; the whole API only, as the bare relay does not resume).

With 2 or more cores the server is pinned to core 0 and the clients and producer to core 1
(taskset). The clients speak the protocol with a small frame parser of their own rather than
the ``websockets`` library, so that the load generator costs little next to the server.
Bare and API runs alternate for ``--rounds`` rounds and each figure is the median round (by
p99), as a shared machine's load drifts. Loopback only; temporary files and Redis keys are
removed after.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import json
import os
import struct
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

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

from api.events_hub import EventHub, Subscription  # noqa: E402
from api.events_protocol import StreamFilter  # noqa: E402
from api.events_ws import uvicorn_ws_settings  # noqa: E402
from shared.config import load_settings  # noqa: E402
from shared.db.engine import create_engine  # noqa: E402
from shared.db.migrate import upgrade  # noqa: E402
from shared.events import Event, EventName  # noqa: E402
from shared.store.base import Store  # noqa: E402
from shared.store.factory import open_store  # noqa: E402
from shared.timeutil import utc_now  # noqa: E402

KEY = "bench-" + uuid.uuid4().hex
CONNECT_CONCURRENCY = 100
DRAIN_TIMEOUT = 20.0  # seconds the clients may take to receive the last event produced


# The bare relay ------------------------------------------------------------------------------


def bare_app() -> Any:
    """uvicorn factory: the hub behind a plain WebSocket route (settings from the environment)."""
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket

    settings = load_settings()
    api = settings.api
    hubs: list[EventHub] = []

    async def relay(websocket: WebSocket) -> None:
        await websocket.accept()
        hub = hubs[0]
        subscription = Subscription(StreamFilter(), limit=api.ws_send_queue)
        hub.join(subscription)
        hub.attach_live(subscription)
        pump = asyncio.create_task(_bare_pump(websocket, subscription))
        subscription.interrupt = pump.cancel
        try:
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass
        finally:
            pump.cancel()
            hub.leave(subscription)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = await open_store(settings, read_only=True)
        hub = EventHub(
            store.events,
            heartbeat_interval=3600.0,
            outage_grace=api.ws_outage_grace,
            retry_initial=api.retry_initial,
            retry_max=api.retry_max,
        )
        await hub.start()
        hubs.append(hub)
        try:
            yield
        finally:
            await hub.stop()
            await store.close()

    app = Starlette(routes=[WebSocketRoute("/v1/events", relay)], lifespan=lifespan)
    gc.collect()  # as the API's factory does
    gc.freeze()
    return app


async def _bare_pump(websocket: Any, subscription: Subscription) -> None:
    send = websocket.send
    frames = subscription.frames
    while subscription.closing is None:
        await subscription.ready.wait()
        subscription.ready.clear()
        while frames:
            await send(frames.popleft().message)


def serve_bare(port: int) -> None:
    import uvicorn

    uvicorn.run(
        "bench.ws:bare_app",
        factory=True,
        host=HOST,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        **uvicorn_ws_settings(load_settings().api),
    )


# The clients ---------------------------------------------------------------------------------


def handshake(path: str, port: int, key: str | None) -> bytes:
    nonce = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {HOST}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {nonce}",
        "Sec-WebSocket-Version: 13",
    ]
    if key:
        lines.append(f"Authorization: Bearer {key}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def masked(opcode: int, payload: bytes) -> bytes:
    """A client frame (clients must mask), for pongs and the close reply."""
    mask = os.urandom(4)
    body = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    return struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload)) + mask + body


class Stats:
    """What every client of a fleet saw; ``done`` is set once every client has received the
    event ``last`` (or lost its connection), or once ``received`` reaches ``target``."""

    def __init__(self, clients: int = 1, target: int | None = None) -> None:
        self.latencies: list[float] = []
        self.received = 0
        self.closes: list[int] = []
        self.clients = clients
        self.target = target
        self.last: int | None = None
        self.finished = 0
        self.done = asyncio.Event()

    def count(self, seq: int) -> bool:
        """Record one more event; whether it was the last one wanted."""
        self.received += 1
        if self.target is not None and self.received >= self.target:
            self.done.set()
        return self.last is not None and seq >= self.last

    def finish(self) -> None:
        self.finished += 1
        if self.finished >= self.clients:
            self.done.set()


class LeanClient(asyncio.Protocol):
    """A minimal WebSocket client: reads unmasked server frames, answers pings, records."""

    def __init__(self, request: bytes, stats: Stats, opened: asyncio.Future[None]) -> None:
        self.request = request
        self.stats = stats
        self.opened = opened
        self.buffer = bytearray()
        self.upgraded = False
        self.transport: asyncio.Transport | None = None
        self.ids: list[int] = []
        self.closed = False
        self.finished = False

    def finish(self) -> None:
        if not self.finished:
            self.finished = True
            self.stats.finish()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.finish()
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"lost before the upgrade: {exc}"))

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buffer[: buffer.find(b"\r\n")])
            del buffer[: end + 4]
            if b" 101 " not in status:
                self.opened.set_exception(ConnectionError(status.decode(errors="replace")))
                assert self.transport is not None
                self.transport.close()
                return
            self.upgraded = True
            self.opened.set_result(None)
        now = time.time()
        offset = 0
        size = len(buffer)
        while size - offset >= 2:
            first, second = buffer[offset], buffer[offset + 1]
            length = second & 0x7F
            start = offset + 2
            if length == 126:
                if size - offset < 4:
                    break
                length = int.from_bytes(buffer[offset + 2 : offset + 4], "big")
                start = offset + 4
            elif length == 127:
                if size - offset < 10:
                    break
                length = int.from_bytes(buffer[offset + 2 : offset + 10], "big")
                start = offset + 10
            if size - start < length:
                break
            payload = bytes(buffer[start : start + length])
            offset = start + length
            self._frame(first & 0x0F, payload, now)
        del buffer[:offset]

    def _frame(self, opcode: int, payload: bytes, now: float) -> None:
        if opcode == 0x1:
            frame = orjson.loads(payload)
            if frame["id"] is None:
                return  # a control frame
            seq = int(frame["id"])
            self.ids.append(seq)
            sent = datetime.fromisoformat(frame["timestamp"]).timestamp()
            self.stats.latencies.append(now - sent)
            if self.stats.count(seq):
                self.finish()
        elif opcode == 0x9 and self.transport is not None:
            self.transport.write(masked(0xA, payload))
        elif opcode == 0x8 and self.transport is not None:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            self.stats.closes.append(code)
            self.transport.write(masked(0x8, payload[:2]))
            self.transport.close()


async def connect_client(port: int, path: str, key: str | None, stats: Stats) -> LeanClient:
    loop = asyncio.get_running_loop()
    opened: asyncio.Future[None] = loop.create_future()
    request = handshake(path, port, key)
    _, client = await loop.create_connection(lambda: LeanClient(request, stats, opened), HOST, port)
    await asyncio.wait_for(opened, 30)
    return client


async def run_fleet(port: int, count: int, key: str | None) -> None:
    """The client process: connect ``count`` clients, say "ready", record until told the last
    id ("stop <id>" on stdin), then print what was seen as JSON."""
    stats = Stats(count)
    limit = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one() -> LeanClient:
        async with limit:
            return await connect_client(port, "/v1/events", key, stats)

    clients = await asyncio.gather(*(one() for _ in range(count)))
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    first, last = (int(part) for part in line.split()[1:3])
    expected = list(range(first, last + 1))
    stats.last = last
    for client in clients:
        if client.closed or (client.ids and client.ids[-1] >= last):
            client.finish()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stats.done.wait(), DRAIN_TIMEOUT)
    complete = sum(1 for c in clients if c.ids == expected)
    missing = sum(len(set(expected) - set(c.ids)) for c in clients)
    duplicates = sum(len(c.ids) - len(set(c.ids)) for c in clients)
    out_of_order = sum(1 for c in clients if c.ids != sorted(c.ids))
    for client in clients:
        if client.transport is not None:
            client.transport.close()
    print(
        json.dumps(
            {
                "clients": count,
                "events": len(expected),
                "received": stats.received,
                "complete_clients": complete,
                "missing": missing,
                "duplicates": duplicates,
                "out_of_order_clients": out_of_order,
                "closes": stats.closes,
                **percentiles(stats.latencies),
            }
        ),
        flush=True,
    )


def percentiles(latencies: list[float]) -> dict[str, float | None]:
    if not latencies:
        return {"p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(latencies)

    def at(fraction: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] * 1000, 1)

    return {
        "p50_ms": at(0.50),
        "p90_ms": at(0.90),
        "p99_ms": at(0.99),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


# The producer and the runs -------------------------------------------------------------------


def trade(seq: int) -> Event:
    data = {
        "trade_id": seq,
        "symbol": ("BTC/USDT", "ETH/USDT", "SOL/USDT")[seq % 3],
        "action": "BUY",
        "qty": 0.0123,
        "price": 45123.5,
        "fee": 0.05,
        "pnl": None,
        "pnl_pct": None,
        "strategy_version": "v20240801_010000",
    }
    return Event(str(seq), EventName.TRADE_EXECUTED, data, utc_now())


async def produce(store: Store, first: int, rate: float, duration: float) -> int:
    """Append one event every 1/rate seconds (on an absolute schedule); the last id."""
    count = round(rate * duration)
    started = time.monotonic()
    for index in range(count):
        delay = started + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await store.events.append([trade(first + index)])
    return first + count - 1


async def newest_id(store: Store) -> int:
    newest = (await store.events.bounds()).newest
    return int(newest) if newest is not None else 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def served(
    command: list[str], env: dict[str, str], port: int, log: Path
) -> contextlib.AbstractContextManager[int]:
    """``server`` for this benchmark: ready once it answers HTTP on ``port`` at all; 30 s to
    stop, as it may be sending to many clients."""
    return server(command, env, f"http://{HOST}:{port}/", log, stop_timeout=30)


async def scenario(
    store: Store,
    env: dict[str, str],
    command: list[str],
    *,
    clients: int,
    rate: float,
    duration: float,
    key: str | None,
    cores: tuple[int | None, int | None],
    log: Path,
) -> dict[str, Any]:
    server_core, client_core = cores
    port = int(command[command.index("--port") + 1])
    with served(pinned(server_core, command), env, port, log) as pid:
        fleet_command = [sys.executable, __file__, "_clients", "--port", str(port)]
        fleet_command += ["--clients", str(clients)] + (["--key", key] if key else [])
        fleet = await asyncio.create_subprocess_exec(
            *pinned(client_core, fleet_command),
            env=env,
            cwd=REPO,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert fleet.stdin is not None
        assert fleet.stdout is not None
        ready = await asyncio.wait_for(fleet.stdout.readline(), 120)
        if ready.strip() != b"ready":
            raise RuntimeError(f"the clients did not connect: {ready!r}")
        await asyncio.sleep(1.0)  # every client attached; the server idle again
        first = await newest_id(store) + 1
        cpu_before, fleet_before = cpu_seconds(pid), cpu_seconds(fleet.pid)
        wall_before = time.monotonic()
        last = await produce(store, first, rate, duration)
        fleet.stdin.write(f"stop {first} {last}\n".encode())
        await fleet.stdin.drain()
        wall = time.monotonic() - wall_before
        server_cpu, fleet_cpu = cpu_seconds(pid) - cpu_before, cpu_seconds(fleet.pid) - fleet_before
        output = await asyncio.wait_for(fleet.stdout.readline(), DRAIN_TIMEOUT + 30)
        await fleet.wait()
    result: dict[str, Any] = json.loads(output)
    result["rate"] = rate
    result["server_cpu"] = round(server_cpu / wall, 2)  # of one core, while producing
    result["fleet_cpu"] = round(fleet_cpu / wall, 2)
    result["server_us_per_frame"] = round(server_cpu / max(1, result["received"]) * 1e6, 1)
    return result


async def catch_up(store: Store, port: int, behind: int) -> list[float]:
    """Seconds for a client ``behind`` events behind to receive them all (three tries)."""
    newest = await newest_id(store)
    if newest < behind:
        await store.events.append([trade(seq) for seq in range(newest + 1, behind + 1)])
        newest = behind
    after = newest - behind
    timings = []
    for _ in range(3):
        stats = Stats(target=behind)
        started = time.perf_counter()
        client = await connect_client(port, f"/v1/events?last_event_id={after}", KEY, stats)
        await asyncio.wait_for(stats.done.wait(), 60)
        timings.append(round(time.perf_counter() - started, 3))
        assert client.ids == list(range(after + 1, newest + 1)), "catch-up lost or doubled events"
        assert client.transport is not None
        client.transport.close()
    return timings


async def prepare(env: dict[str, str]) -> None:
    engine = create_engine(env["DATABASE_URL"])
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def versions() -> dict[str, str]:
    """uvicorn's and websockets'."""
    from importlib.metadata import version

    import uvicorn

    return {"uvicorn": uvicorn.__version__, "websockets": version("websockets")}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    server_core, client_core = core_pair() or (None, None)
    if client_core is not None:  # the producer runs beside the clients, not the server
        os.sched_setaffinity(0, {client_core})
    results: dict[str, Any] = {"machine": machine(**versions()), "settings": vars(args).copy()}
    results["load_before"] = [round(load, 2) for load in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="tb-bench-ws-") as tmp:
        work = Path(tmp)
        env = api_env(work, args.backend, KEY, pythonpath=str(REPO))
        await prepare(env)
        settings = load_settings(env=env, dotenv_path=None)
        store = await open_store(settings)
        script = tradingbrain_script()
        try:
            for spec in args.scenarios.split(","):
                clients, rate = (int(part) for part in spec.split("x"))
                rounds: dict[str, list[dict[str, Any]]] = {"bare": [], "api": []}
                for _ in range(args.rounds):  # alternating, so drift hits both alike
                    for name, runs in rounds.items():
                        port = free_port()
                        if name == "bare":
                            command = [sys.executable, __file__, "_bare", "--port", str(port)]
                        else:
                            command = [script, "api", "--host", HOST, "--port", str(port)]
                        runs.append(
                            await scenario(
                                store,
                                env,
                                command,
                                clients=clients,
                                rate=rate,
                                duration=args.duration,
                                key=KEY if name == "api" else None,
                                cores=(server_core, client_core),
                                log=work / f"{name}.log",
                            )
                        )
                        print(spec, name, runs[-1], file=sys.stderr, flush=True)
                for name, runs in rounds.items():
                    median = sorted(runs, key=lambda run: run["p99_ms"] or 0.0)[len(runs) // 2]
                    median["rounds_p99_ms"] = [run["p99_ms"] for run in runs]
                    median["rounds_missing"] = [run["missing"] for run in runs]
                    results[f"{spec} {name}"] = median
            if args.catch_up:
                port = free_port()
                command = [script, "api", "--host", HOST, "--port", str(port)]
                with served(pinned(server_core, command), env, port, work / "catch-up.log"):
                    results["catch_up_s"] = await catch_up(store, port, args.catch_up)
        finally:
            await store.close()
            if args.backend == "redis":
                await delete_store_keys(env)
    return results


def table(results: dict[str, Any]) -> str:
    lines = [
        "| clients | events/s | server | received / expected | missing | dup | p50 ms | p90 ms "
        "| p99 ms | max ms | server CPU | server µs/frame | clients' CPU | p99 ms of each round |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, r in results.items():
        if not isinstance(r, dict) or "clients" not in r:
            continue
        label = "whole API" if key.endswith(" api") else "bare relay"
        lines.append(
            f"| {r['clients']} | {r['rate']:g} | {label} | {r['received']:,} / "
            f"{r['clients'] * r['events']:,} | {r['missing']} | {r['duplicates']} "
            f"| {r['p50_ms']} | {r['p90_ms']} | {r['p99_ms']} | {r['max_ms']} "
            f"| {r['server_cpu']:.0%} | {r['server_us_per_frame']} | {r['fleet_cpu']:.0%} "
            f"| {r['rounds_p99_ms']} |"
        )
    if "catch_up_s" in results:
        behind = results["settings"]["catch_up"]
        lines.append("")
        lines.append(f"catch-up of {behind:,} events (s, three tries): {results['catch_up_s']}")
    lines.append(f"machine: {json.dumps(results['machine'])}")
    lines.append(f"load average before the run: {results['load_before']}")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_bare":
        serve_bare(int(sys.argv[sys.argv.index("--port") + 1]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_clients":
        fleet = argparse.ArgumentParser()
        fleet.add_argument("_clients")
        fleet.add_argument("--port", type=int, required=True)
        fleet.add_argument("--clients", type=int, required=True)
        fleet.add_argument("--key")
        options = fleet.parse_args()
        asyncio.run(run_fleet(options.port, options.clients, options.key))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of production")
    parser.add_argument(
        "--scenarios", default="200x200,1000x50", help="CLIENTSxRATE, comma separated"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds (the median is shown)")
    parser.add_argument("--catch-up", type=int, default=10_000, help="events behind (0: skip)")
    parser.add_argument("--backend", choices=("redis", "sqlite"), default="redis")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    results = asyncio.run(run(args))
    print(json.dumps(results, indent=2) if args.json else table(results))


if __name__ == "__main__":
    main()
