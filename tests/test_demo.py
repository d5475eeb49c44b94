"""``tradingbrain demo`` as a user runs it: brain and API come up, trades show over REST and
events over WebSocket, and Ctrl-C (SIGINT) stops both processes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import websockets

from tests.support.replay import REPLAY_DIR
from tests.support.services import async_wait_until, free_port, wait_until

pytestmark = pytest.mark.slow


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_the_demo_serves_trades_and_events_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TB_") and k != "API_KEY"}
    env["TB_MARKET__REPLAY_DIR"] = str(REPLAY_DIR)
    demo = subprocess.Popen(
        [str(Path(sys.executable).with_name("tradingbrain")), "demo", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert demo.stdout is not None
    lines: list[str] = []
    try:
        while not any(line.startswith("Ctrl-C") for line in lines):
            line = await asyncio.to_thread(demo.stdout.readline)
            assert line, f"the demo ended early: {''.join(lines)}"
            lines.append(line)
        banner = "".join(lines)
        assert "Starting a fresh demo account" in banner
        key = re.search(r"API key\s+(\S+)", banner)
        pids = re.search(r"brain pid (\d+), API pid (\d+)", banner)
        assert key is not None
        assert pids is not None
        headers = {"Authorization": f"Bearer {key.group(1)}"}
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=5) as client:
            system = (await client.get("/v1/system")).json()["data"]
            assert system["status"] == "running"

            async def traded() -> bool:
                response = await client.get("/v1/trades", params={"limit": 1})
                return response.status_code == 200 and bool(response.json()["data"])

            await async_wait_until(traded, 60, "a trade over REST")
        ws_url = f"ws://127.0.0.1:{port}/v1/events?token={key.group(1)}"
        async with websockets.connect(ws_url) as socket:
            frame = json.loads(await asyncio.wait_for(socket.recv(), 10))
        assert set(frame) == {"id", "event", "data", "timestamp"}
        assert frame["timestamp"].endswith("Z")
    finally:
        demo.send_signal(signal.SIGINT)
        demo.communicate(timeout=60)
    assert demo.returncode == 0
    brain_pid, api_pid = int(pids.group(1)), int(pids.group(2))
    wait_until(lambda: gone(brain_pid) and gone(api_pid), 10, "both processes to end")
