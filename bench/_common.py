"""What the benchmark scripts share: free loopback ports and core pinning."""

from __future__ import annotations

import socket

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def pinned(core: int | None, command: list[str]) -> list[str]:
    """``command`` run on one core (taskset), or as it is when no core is given."""
    return ["taskset", "-c", str(core), *command] if core is not None else command
