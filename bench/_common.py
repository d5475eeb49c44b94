"""What the benchmark scripts share: ports, core pinning, the machine, Redis clean-up."""

from __future__ import annotations

import platform
import socket
from pathlib import Path

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def pinned(core: int | None, command: list[str]) -> list[str]:
    """``command`` run on one core (taskset), or as it is when no core is given."""
    return ["taskset", "-c", str(core), *command] if core is not None else command


def cpu_model() -> str:
    """The processor's name, as /proc/cpuinfo gives it."""
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


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
