"""``tradingbrain demo``: the brain and the Data API as two processes on the embedded store,
replaying the shipped real candles at a pace that shows trades and events within seconds.

Nothing to install beyond the package: SQLite files under ``var/demo``. A second run resumes
the demo account where the first left it (``--fresh`` starts over); either is said plainly.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from shared.cli import Command, CommandError

DEMO_DIR = Path("var") / "demo"
READY_TIMEOUT = 60.0


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8080, help="the API's port (default 8080)")
    parser.add_argument(
        "--speed",
        type=float,
        default=3000.0,
        help="market seconds per wall second (default 3000: a 5-minute candle every 0.1 s)",
    )
    parser.add_argument("--fresh", action="store_true", help="start a new demo account")


def _run(args: argparse.Namespace) -> int:
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    key = os.environ.get("API_KEY", "").split(",")[0].strip() or secrets.token_urlsafe(32)
    env = {
        **os.environ,
        "API_KEY": key,
        "TB_STORE__BACKEND": "sqlite",
        "TB_STORE__SQLITE_PATH": str(DEMO_DIR / "state.db"),
        "TB_DATABASE__SQLITE_PATH": str(DEMO_DIR / "history.db"),
        "DATABASE_URL": "",
        "TB_MARKET__FEED": "replay",
        "TB_MARKET__REPLAY_SPEED": str(args.speed),
        "TB_API__HOST": "127.0.0.1",
        "TB_API__PORT": str(args.port),
    }
    print(_start_note(args.fresh, env))
    base = [sys.executable, "-m", "shared"]  # the tradingbrain command, this interpreter
    if args.fresh:
        subprocess.run([*base, "reset", "--yes"], env=env, check=True, stdout=subprocess.DEVNULL)
    # Their own sessions: Ctrl-C reaches only the demo, which stops them in order.
    children = [
        subprocess.Popen(
            [*base, "brain", "--log-level", "WARNING"], env=env, start_new_session=True
        ),
        subprocess.Popen([*base, "api"], env=env, start_new_session=True),
    ]
    try:
        url = f"http://127.0.0.1:{args.port}"
        _wait_until_serving(url, key, children)
        print(_banner(url, key, children), flush=True)
        _wait(children)
    except KeyboardInterrupt:
        print("\nstopping the brain and the API ...", flush=True)
    finally:
        _stop(children)
    return 0


def _start_note(fresh: bool, env: dict[str, str]) -> str:
    history = Path(env["TB_DATABASE__SQLITE_PATH"])
    resumed = _checkpoint(history) if not fresh else None
    if resumed:
        return (
            f"Resuming the demo account in {DEMO_DIR}/ from market time {resumed} "
            "(--fresh starts over)."
        )
    return f"Starting a fresh demo account in {DEMO_DIR}/ (real Binance candles, July-August 2024)."


def _checkpoint(history: Path) -> str | None:
    if not history.exists():
        return None
    with (
        contextlib.suppress(sqlite3.Error),
        contextlib.closing(sqlite3.connect(f"file:{history.resolve()}?mode=ro", uri=True)) as conn,
    ):
        row = conn.execute("SELECT market_time FROM brain_state").fetchone()
        return str(row[0]) if row else None
    return None


def _wait_until_serving(url: str, key: str, children: list[subprocess.Popen[bytes]]) -> None:
    """Until /v1/system answers: the API is up and the brain has published its state."""
    deadline = time.monotonic() + READY_TIMEOUT
    headers = {"Authorization": f"Bearer {key}"}
    request = urllib.request.Request(f"{url}/v1/system", headers=headers)  # noqa: S310 - http
    while time.monotonic() < deadline:
        if any(child.poll() is not None for child in children):
            raise CommandError("tradingbrain demo: the brain or the API stopped during start-up")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(request, timeout=2) as answer,  # noqa: S310 - loopback http
        ):
            if answer.status == 200:
                return
        time.sleep(0.2)
    raise CommandError(f"tradingbrain demo: the API did not answer at {url} within a minute")


def _banner(url: str, key: str, children: list[subprocess.Popen[bytes]]) -> str:
    ws_url = url.replace("http://", "ws://")
    brain, api = (child.pid for child in children)
    return f"""
TradingBrain demo: the brain is paper-trading a replay of real candles; the Data API serves it.

  API      {url}   (docs: docs/api.md, {url}/v1/openapi.json)
  API key  {key}

  curl -H "Authorization: Bearer {key}" {url}/v1/portfolio
  curl -H "Authorization: Bearer {key}" "{url}/v1/trades?limit=5"
  {sys.executable} -m websockets "{ws_url}/v1/events?token={key}"

Ctrl-C stops both (brain pid {brain}, API pid {api}).
"""


def _wait(children: list[subprocess.Popen[bytes]]) -> None:
    while all(child.poll() is None for child in children):
        time.sleep(0.2)


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM (a graceful stop for both) to each, then wait; whatever lingers is killed."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


demo_command = Command(
    help="start the brain and the Data API on the embedded store, replaying real candles",
    configure=_configure,
    run=_run,
)
