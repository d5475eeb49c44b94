"""A full replay of the shipped three weeks, once per session and store backend, shared by the
end-to-end tests of the brain and the API (it is the expensive part). The fixture is
registered in tests/conftest.py."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from brain.process import RunResult, run_brain
from shared.config import load_settings
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
REPLAY_DIR = ROOT / "data" / "market" / "binance-spot-5m-2024-07-22_2024-08-11"


def first_days(target: Path, days: int) -> Path:
    """A copy of the first ``days`` days of the shipped candles, for shorter replays."""
    target.mkdir()
    for source in REPLAY_DIR.glob("*.csv"):
        lines = source.read_text().splitlines(keepends=True)
        (target / source.name).write_text("".join(lines[: 1 + days * 288]))
    return target


def brain_env(workdir: Path, backend: str, redis_url: str | None, prefix: str) -> dict[str, str]:
    """The settings of a test brain, as environment variables (a subprocess gets the same)."""
    env = {
        "TB_STORE__BACKEND": backend,
        "TB_STORE__SQLITE_PATH": str(workdir / "state.db"),
        "TB_STORE__KEY_PREFIX": prefix,
        "TB_DATABASE__SQLITE_PATH": str(workdir / "history.db"),
        "TB_MARKET__REPLAY_DIR": str(REPLAY_DIR),
        "TB_MARKET__REPLAY_SPEED": "0",
        "TB_BRAIN__SNAPSHOT_INTERVAL": "0.05",
        # The nightly cycle, small and quick: a short search, paper tests of a day or two, and guard
        # rails tight enough that a deploy in these three weeks gets rolled back.
        "TB_ORCHESTRATOR__CANDIDATE_BUDGET": "6",
        "TB_ORCHESTRATOR__LOOKBACK_DAYS": "3",
        "TB_ORCHESTRATOR__MIN_HISTORY_DAYS": "1",
        "TB_ORCHESTRATOR__TIER1_PAPER_DAYS": "1",
        "TB_ORCHESTRATOR__TIER2_PAPER_DAYS": "2",
        "TB_ORCHESTRATOR__TIER3_PAPER_DAYS": "2",
        "TB_ORCHESTRATOR__ROLLBACK_MAX_LOSSES": "2",
    }
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    return env


@dataclass(frozen=True)
class Replay:
    backend: str
    settings: Settings
    workdir: Path
    result: RunResult


def replay_fixture(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    redis_url: str | None,
) -> Iterator[Replay]:
    backend = str(request.param)
    if backend == "redis" and redis_url is None:
        if os.environ.get("TB_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail("a real Redis is required for the replay on Redis")
        pytest.skip("the replay on Redis needs a real redis-server")
    workdir = tmp_path_factory.mktemp(f"replay-{backend}")
    prefix = f"tbtest:{uuid.uuid4().hex[:12]}"
    settings = load_settings(env=brain_env(workdir, backend, redis_url, prefix), dotenv_path=None)
    result = asyncio.run(run_brain(settings, asyncio.Event(), exit_at_end=True))
    yield Replay(backend, settings, workdir, result)
    if redis_url is not None:
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()
