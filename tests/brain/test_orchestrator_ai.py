"""The nightly cycle with the AI strategist: the real ``anthropic`` SDK against a local server
that speaks the Messages API, over the first four replayed days. An out-of-bounds answer is
rejected and the optimiser asked instead; a valid one starts a paper test; once the day's token
budget is spent the optimiser proposes without the API being called."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from brain.process import run_brain
from shared.config import load_settings
from shared.db import tables
from shared.events import EventName
from shared.store.base import SnapshotName
from tests.brain.test_replay import read_events, read_snapshots, sql_rows
from tests.support.messages_api import MessagesApiServer, message
from tests.support.replay import Replay, brain_env, first_days

pytestmark = pytest.mark.slow

KEY = "sk-ant-test-key"
OUT_OF_BOUNDS = json.dumps({"changes": {"rsi_exit": 150}, "description": "sell later"})
VALID = json.dumps(
    {"changes": {"rsi_exit": 80, "stop_loss_atr": 2.5}, "description": "Let winners run."}
)


async def test_the_cycle_asks_the_ai_rejects_bad_answers_and_keeps_to_the_budget(
    tmp_path: Path,
) -> None:
    env = {
        **brain_env(tmp_path, "sqlite", None, f"tbtest:{uuid.uuid4().hex[:12]}"),
        "TB_MARKET__REPLAY_DIR": str(first_days(tmp_path / "market", 4)),
        "ANTHROPIC_API_KEY": KEY,
        "TB_AI__MODEL": "claude-sonnet-4-6",
        "TB_AI__MAX_TOKENS": "1000",
        # 600 + 1000 tokens leave 900: less than one more answer may take (max_tokens)
        "TB_AI__DAILY_TOKEN_BUDGET": "2500",
        "TB_AI__MAX_RETRIES": "0",
    }
    async with MessagesApiServer(api_key=KEY) as server:
        server.push(
            message(OUT_OF_BOUNDS, input_tokens=400, output_tokens=200),  # 2024-07-22 cycle
            message(VALID, input_tokens=700, output_tokens=300),  # 2024-07-23 cycle
        )
        env["TB_AI__BASE_URL"] = server.base_url
        settings = load_settings(env=env, dotenv_path=None)
        await run_brain(settings, asyncio.Event(), exit_at_end=True)
        assert len(server.bodies) == 2, "the budget kept the third and fourth cycles away"
        assert server.pending == 0
    assert all(body["model"] == "claude-sonnet-4-6" for body in server.bodies)
    run = Replay("sqlite", settings, tmp_path, None)  # type: ignore[arg-type]

    calls = await sql_rows(run, tables.ai_calls)
    assert [(c.model, c.input_tokens, c.output_tokens) for c in calls] == [
        ("claude-sonnet-4-6", 400, 200),
        ("claude-sonnet-4-6", 700, 300),
    ]
    # the price table: USD 3 and 15 per million input and output tokens
    assert [c.cost_usd for c in calls] == pytest.approx([0.0042, 0.0066])

    events = await read_events(run)
    summaries = [
        e.data["summary"] for e in events if e.name is EventName.ORCHESTRATOR_CYCLE_COMPLETED
    ]
    assert len(summaries) == 4
    assert "rsi_exit" in summaries[0]
    assert "AI" in summaries[0]
    assert "budget" in summaries[2]
    assert "budget" in summaries[3]

    versions = {v.version: v for v in await sql_rows(run, tables.strategy_versions)}
    ai_version = versions["v20240723_010000"]
    assert ai_version.parameters["rsi_exit"] == 80
    assert ai_version.parameters["stop_loss_atr"] == 2.5
    assert "Let winners run." in ai_version.description
    assert all(v.parameters["rsi_exit"] <= 100 for v in versions.values())
    started = [e.data["version"] for e in events if e.name is EventName.PAPER_TEST_STARTED]
    assert started[0] == "v20240723_010000"
    later = [versions[v] for v in started[1:]]
    assert all(v.description.startswith("optimiser") for v in later)

    usage = (await read_snapshots(run))[SnapshotName.AI_USAGE]["today"]
    assert usage["total_tokens"] == 1600
    assert usage["budget_remaining"] == 900
    assert usage["by_model"]["claude-sonnet-4-6"]["calls"] == 2
    assert usage["total_cost_usd"] == pytest.approx(0.0108)
