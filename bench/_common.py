"""What the benchmark scripts share: ports, core pinning, the machine, an API server's
environment and process, Redis clean-up."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from shared.store.factory import DEFAULT_REDIS_URL

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def pinned(core: int | None, command: list[str]) -> list[str]:
    """``command`` run on one core (taskset), or as it is when no core is given."""
    return ["taskset", "-c", str(core), *command] if core is not None else command


def core_pair() -> tuple[int, int] | None:
    """Cores 0 and 1, to keep a server and what loads it apart (taskset); None with fewer than
    two cores or no taskset."""
    return (0, 1) if (os.cpu_count() or 1) >= 2 and shutil.which("taskset") else None


def cpu_model() -> str:
    """The processor's name, as /proc/cpuinfo gives it."""
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine(**extra: Any) -> dict[str, Any]:
    """The machine a benchmark ran on (cores, CPU, Python), then ``extra`` (what it measured)."""
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        **extra,
    }


def tradingbrain_script() -> str:
    """The installed ``tradingbrain`` command beside this Python."""
    script = shutil.which("tradingbrain", path=os.path.dirname(sys.executable))
    if script is None:
        raise SystemExit("the tradingbrain script is not installed (pip install -e .)")
    return script


def api_env(
    work: Path,
    backend: str,
    key: str,
    *,
    database_url: str | None = None,
    pythonpath: str | None = None,
) -> dict[str, str]:
    """The whole environment of an API server subprocess (nothing else of ours leaks in): API
    key ``key``; the store on ``backend`` with its SQLite file in ``work`` and its Redis keys
    under a fresh prefix (REDIS_URL from our environment); the SQL history ``database_url``,
    or a SQLite file in ``work``; PYTHONPATH when given."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "LANG": "C.UTF-8",
        "API_KEY": key,
        "TB_STORE__BACKEND": backend,
        "TB_STORE__SQLITE_PATH": str(work / "state.db"),
        "TB_STORE__KEY_PREFIX": f"tbbench:{uuid.uuid4().hex[:8]}",
        "DATABASE_URL": database_url or f"sqlite+aiosqlite:///{work / 'history.db'}",
        "REDIS_URL": os.environ.get("REDIS_URL", DEFAULT_REDIS_URL),
    }
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    return env


@contextlib.contextmanager
def server(
    command: list[str],
    env: dict[str, str],
    ready_url: str,
    log: Path,
    *,
    headers: Mapping[str, str] | None = None,
    status: int | None = None,
    stop_timeout: float = 15.0,
) -> Iterator[int]:
    """Start a server process (output to ``log``); yields its pid once ``ready_url`` answers
    (with ``status``, when given) within 30 s. Stopped with SIGTERM, killed after
    ``stop_timeout`` seconds."""
    import httpx

    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=output, stderr=output)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(ready_url, headers=headers, timeout=1)
                if status is None or answer.status_code == status:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def delete_prefix(redis_url: str, prefix: str) -> None:
    """Remove every key a benchmark made under ``prefix``."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def delete_store_keys(env: Mapping[str, str]) -> None:
    """Remove the Redis keys of the store ``env`` (from api_env) points at."""
    await delete_prefix(env["REDIS_URL"], env["TB_STORE__KEY_PREFIX"])
