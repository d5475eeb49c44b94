"""The AI strategist through the real ``anthropic`` SDK against a local Messages API server,
recording into a real (SQLite) SQL history."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from brain.orchestrator.ai import AiStrategist
from brain.orchestrator.ai_usage import AiUsage
from brain.orchestrator.proposal import NoProposal
from brain.strategy import StrategyParams
from shared.config import load_settings
from shared.db.engine import create_engine
from shared.db.migrate import upgrade
from shared.db.tables import ai_calls
from shared.settings import AiSettings, ModelPrice, Secret
from tests.support.messages_api import (
    HANG,
    MessagesApiServer,
    Reply,
    message,
    overloaded,
    presented_key,
    rate_limited,
    server_error,
)

KEY = "sk-ant-test-0123456789abcdefghij"
MODEL = "claude-opus-4-6"  # a model the SDK does not flag as deprecated (warnings are errors)
PRICES = (ModelPrice(MODEL, 5.0, 25.0), ModelPrice("claude-haiku-4-5", 1.0, 5.0))
NOW = datetime(2026, 2, 9, 3, 10, tzinfo=UTC)  # the pinned wall clock
ACTIVE = StrategyParams(
    ema_fast=12,
    ema_slow=26,
    rsi_period=14,
    atr_period=14,
    volume_period=20,
    rsi_entry_min=45.0,
    rsi_entry_max=70.0,
    rsi_exit=78.0,
    volume_ratio_min=1.5,
    trend_threshold_pct=0.15,
    volatile_atr_pct=1.2,
    stop_loss_atr=2.0,
    take_profit_atr=3.0,
    min_confidence=0.5,
)
REPORT = {
    "window": {"start": NOW - timedelta(days=6), "end": NOW},
    "trades": 42,
    "win_rate": 0.55,
    "sharpe_ratio": 1.23,
    "max_drawdown_pct": 3.4,
}
GOOD = {"changes": {"rsi_entry_max": 65.0, "ema_fast": 10}, "description": "Enter earlier."}

MakeStrategist = Callable[..., Awaitable[AiStrategist]]


@pytest.fixture
async def api() -> AsyncIterator[MessagesApiServer]:
    async with MessagesApiServer(KEY) as server:
        yield server


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    created = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'history.db'}")
    await upgrade(created)
    yield created
    await created.dispose()


def ai_settings(api: MessagesApiServer, **changes: Any) -> tuple[AiSettings, Secret]:
    """The shipped [ai] settings pointed at the local server, without retries unless asked."""
    env = {"ANTHROPIC_API_KEY": KEY, "TB_AI__BASE_URL": api.base_url, "TB_AI__MAX_RETRIES": "0"}
    settings = load_settings(env=env, dotenv_path=None)
    key = settings.secrets.anthropic_api_key
    assert key is not None
    return dataclasses.replace(settings.ai, model=MODEL, prices=PRICES, **changes), key


@pytest.fixture
async def make_strategist(
    api: MessagesApiServer, engine: AsyncEngine
) -> AsyncIterator[MakeStrategist]:
    made: list[AiStrategist] = []

    async def make(*, key: Secret | None = None, **changes: Any) -> AiStrategist:
        settings, configured_key = ai_settings(api, **changes)
        strategist = AiStrategist(
            settings, key or configured_key, AiUsage(engine, settings), clock=lambda: NOW
        )
        made.append(strategist)
        return strategist

    yield make
    for strategist in made:
        await strategist.aclose()


async def call_rows(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(ai_calls).order_by(ai_calls.c.id))).all())


async def spend(usage: AiUsage, at: datetime, tokens: int, model: str = MODEL) -> None:
    await usage.record(
        model=model, purpose="test", input_tokens=tokens, output_tokens=0, called_at=at
    )


async def assert_no_proposal_and_no_row(
    strategist: AiStrategist,
    api: MessagesApiServer,
    engine: AsyncEngine,
    *,
    match: str,
    requests: int,
) -> None:
    """``propose`` gives up (NoProposal matching ``match``) after ``requests`` requests to the
    API, with no call recorded."""
    with pytest.raises(NoProposal, match=match):
        await strategist.propose(ACTIVE, REPORT)
    assert len(api.requests) == requests
    assert await call_rows(engine) == []


def ai_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "brain.orchestrator.ai" and r.levelno == logging.WARNING
    ]


async def test_a_valid_answer_is_a_proposal_and_the_call_is_recorded(
    api: MessagesApiServer,
    engine: AsyncEngine,
    make_strategist: MakeStrategist,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    strategist = await make_strategist()
    api.push(message(json.dumps(GOOD), input_tokens=1200, output_tokens=80))

    proposal = await strategist.propose(ACTIVE, REPORT)

    assert proposal.strategist == "ai"
    assert proposal.description == "Enter earlier."
    assert proposal.params == dataclasses.replace(ACTIVE, rsi_entry_max=65.0, ema_fast=10)
    [row] = await call_rows(engine)
    assert (row.model, row.purpose, row.input_tokens, row.output_tokens) == (
        MODEL,
        "strategy_proposal",
        1200,
        80,
    )
    assert row.cost_usd == pytest.approx((1200 * 5.0 + 80 * 25.0) / 1e6)
    assert row.called_at == NOW

    [request] = api.requests
    assert presented_key(request) == KEY
    assert "anthropic-version" in request.headers
    body = request.body
    assert body["model"] == MODEL
    assert body["max_tokens"] == ai_settings(api)[0].max_tokens
    assert "JSON" in body["system"]
    prompt = body["messages"][0]["content"]
    assert body["messages"][0]["role"] == "user"
    assert '"sharpe_ratio":1.23' in prompt
    assert '"start":"2026-02-03T03:10:00Z"' in prompt  # datetimes in the report, on the wire
    assert '"ema_fast":{"min":2,"max":200,"integer":true}' in prompt
    assert '"rsi_exit":{"min":0.0,"max":100.0,"integer":false}' in prompt
    assert '"rsi_entry_max":70.0' in prompt  # the active parameters
    assert KEY not in caplog.text


async def test_a_fenced_answer_is_accepted(
    api: MessagesApiServer, make_strategist: MakeStrategist
) -> None:
    strategist = await make_strategist()
    api.push(message(f"```json\n{json.dumps(GOOD)}\n```", input_tokens=10, output_tokens=5))
    proposal = await strategist.propose(ACTIVE, REPORT)
    assert proposal.params.rsi_entry_max == 65.0


def answer(changes: Any, description: Any = "Because.") -> str:
    return json.dumps({"changes": changes, "description": description})


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('Sure! {"changes": {"ema_fast": 10}', "not JSON"),
        ('[{"ema_fast": 10}]', "not a JSON object"),
        (json.dumps({"description": "no changes"}), '"changes"'),
        (answer({}), '"changes"'),
        (answer({"ema_fast": 10, "leverage": 5}), "unknown parameter(s): leverage"),
        (answer({"ema_fast": "10"}), "ema_fast a non-numeric"),
        (answer({"min_confidence": True}), "min_confidence a non-numeric"),
        (answer({"ema_fast": 10.5}), "ema_fast must be a whole number"),
        (answer({"ema_fast": 500}), "ema_fast=500 is outside [2, 200]"),
        (answer({"stop_loss_atr": -1.0}), "stop_loss_atr"),
        (answer({"rsi_entry_max": 80.0}), "rsi_exit must be above rsi_entry_max"),
        (answer({"ema_fast": 30}), "ema_fast must be below ema_slow"),
        (answer({"ema_fast": 12, "rsi_exit": 78}), "changes nothing"),
        (answer({"ema_fast": 10}, description=None), '"description"'),
    ],
)
async def test_a_bad_answer_is_rejected_but_its_tokens_are_recorded(
    api: MessagesApiServer,
    engine: AsyncEngine,
    make_strategist: MakeStrategist,
    caplog: pytest.LogCaptureFixture,
    *,
    text: str,
    reason: str,
) -> None:
    strategist = await make_strategist()
    api.push(message(text, input_tokens=900, output_tokens=40))

    with pytest.raises(NoProposal, match="AI answer") as raised:
        await strategist.propose(ACTIVE, REPORT)

    assert reason in str(raised.value)
    assert [w for w in ai_warnings(caplog) if reason in w], "the reason is logged"
    [row] = await call_rows(engine)
    assert (row.input_tokens, row.output_tokens) == (900, 40)


async def test_an_answer_cut_at_max_tokens_says_so(
    api: MessagesApiServer, make_strategist: MakeStrategist
) -> None:
    strategist = await make_strategist()
    api.push(
        message('{"changes": {"ema_f', input_tokens=9, output_tokens=9, stop_reason="max_tokens")
    )
    with pytest.raises(NoProposal, match="cut off at max_tokens"):
        await strategist.propose(ACTIVE, REPORT)


async def test_a_rate_limit_is_retried_by_the_sdk_then_gives_up_without_a_row(
    api: MessagesApiServer, engine: AsyncEngine, make_strategist: MakeStrategist
) -> None:
    strategist = await make_strategist(max_retries=1)
    api.push(rate_limited(), rate_limited())

    await assert_no_proposal_and_no_row(
        strategist, api, engine, match="429 rate_limit_error", requests=2
    )


async def test_a_rate_limit_then_an_answer_is_one_recorded_call(
    api: MessagesApiServer, engine: AsyncEngine, make_strategist: MakeStrategist
) -> None:
    strategist = await make_strategist(max_retries=1)
    api.push(rate_limited(), message(json.dumps(GOOD), input_tokens=100, output_tokens=20))

    proposal = await strategist.propose(ACTIVE, REPORT)

    assert proposal.params.ema_fast == 10
    assert len(api.requests) == 2
    assert [(r.input_tokens, r.output_tokens) for r in await call_rows(engine)] == [(100, 20)]


@pytest.mark.parametrize(
    ("reply", "reason"),
    [(server_error(), "HTTP 500 api_error"), (overloaded(), "HTTP 529 overloaded_error")],
)
async def test_a_server_error_is_no_proposal_and_no_row(
    api: MessagesApiServer,
    engine: AsyncEngine,
    make_strategist: MakeStrategist,
    caplog: pytest.LogCaptureFixture,
    *,
    reply: Reply,
    reason: str,
) -> None:
    strategist = await make_strategist()
    api.push(reply)

    await assert_no_proposal_and_no_row(strategist, api, engine, match=reason, requests=1)
    assert [w for w in ai_warnings(caplog) if reason in w]


async def test_a_wrong_key_is_refused_once_and_never_logged(
    api: MessagesApiServer,
    engine: AsyncEngine,
    make_strategist: MakeStrategist,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "sk-ant-wrong-9876543210zyxwvutsrq"
    strategist = await make_strategist(key=Secret(wrong), max_retries=2)

    await assert_no_proposal_and_no_row(
        strategist,
        api,
        engine,
        match="HTTP 401 authentication_error",
        requests=1,  # a 401 is not retried
    )
    assert wrong not in caplog.text


async def test_an_unanswered_request_times_out(
    api: MessagesApiServer, engine: AsyncEngine, make_strategist: MakeStrategist
) -> None:
    strategist = await make_strategist(timeout=0.3)
    api.push(HANG)

    await assert_no_proposal_and_no_row(
        strategist, api, engine, match="APITimeoutError", requests=1
    )


async def test_a_spent_budget_makes_no_request(
    api: MessagesApiServer, engine: AsyncEngine, make_strategist: MakeStrategist
) -> None:
    strategist = await make_strategist(daily_token_budget=10_000, max_tokens=1_000)
    usage = AiUsage(engine, ai_settings(api)[0])
    await spend(usage, NOW.replace(hour=0, minute=0), 4_000)  # midnight counts for today
    await spend(usage, NOW - timedelta(minutes=5), 5_001)  # 999 left: less than one call
    api.push(message(json.dumps(GOOD), input_tokens=1, output_tokens=1))

    assert await strategist.budget_remaining() == 999
    with pytest.raises(NoProposal, match="AI token budget spent"):
        await strategist.propose(ACTIVE, REPORT)

    assert api.requests == []
    assert len(await call_rows(engine)) == 2


async def test_a_budget_with_room_for_exactly_one_call_calls(
    api: MessagesApiServer, engine: AsyncEngine, make_strategist: MakeStrategist
) -> None:
    strategist = await make_strategist(daily_token_budget=10_000, max_tokens=1_000)
    await spend(AiUsage(engine, ai_settings(api)[0]), NOW, 9_000)
    api.push(message(json.dumps(GOOD), input_tokens=300, output_tokens=50))

    await strategist.propose(ACTIVE, REPORT)

    assert len(api.requests) == 1
    assert await strategist.budget_remaining() == 10_000 - 9_000 - 350


async def test_only_todays_calls_count_against_the_budget(
    api: MessagesApiServer, engine: AsyncEngine, make_strategist: MakeStrategist
) -> None:
    strategist = await make_strategist(daily_token_budget=10_000, max_tokens=1_000)
    usage = AiUsage(engine, ai_settings(api)[0])
    midnight = NOW.replace(hour=0, minute=0)
    await spend(usage, midnight - timedelta(microseconds=1), 10_000)  # yesterday, wall clock
    await spend(usage, midnight - timedelta(days=1), 10_000)
    await spend(usage, midnight + timedelta(days=1), 10_000)  # tomorrow's first instant
    api.push(message(json.dumps(GOOD), input_tokens=300, output_tokens=50))

    assert await strategist.budget_remaining() == 10_000
    await strategist.propose(ACTIVE, REPORT)
    assert len(api.requests) == 1


async def test_usage_view_has_the_plans_shape(
    api: MessagesApiServer, engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    settings = dataclasses.replace(ai_settings(api)[0], daily_token_budget=50_000)
    usage = AiUsage(engine, settings)
    midnight = NOW.replace(hour=0, minute=0)
    for at, model, tokens_in, tokens_out in [
        (midnight, MODEL, 10_000, 2_000),
        (NOW, MODEL, 15_000, 3_000),
        (NOW, "claude-haiku-4-5", 4_000, 1_000),
        (NOW, "claude-unpriced", 500, 0),
        (NOW, "claude-unpriced", 500, 0),
        (midnight - timedelta(seconds=1), MODEL, 99_000, 0),  # yesterday
        (midnight + timedelta(days=1), MODEL, 99_000, 0),  # tomorrow
    ]:
        await usage.record(
            model=model,
            purpose="strategy_proposal",
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            called_at=at,
        )

    view = await usage.view(NOW)

    opus = (25_000 * 5.0 + 5_000 * 25.0) / 1e6
    haiku = (4_000 * 1.0 + 1_000 * 5.0) / 1e6
    assert view == {
        "today": {
            "date": "2026-02-09",
            "total_tokens": 36_000,
            "total_cost_usd": pytest.approx(opus + haiku),
            "by_model": {
                MODEL: {"calls": 2, "tokens": 30_000, "cost_usd": pytest.approx(opus)},
                "claude-haiku-4-5": {"calls": 1, "tokens": 5_000, "cost_usd": pytest.approx(haiku)},
                "claude-unpriced": {"calls": 2, "tokens": 1_000, "cost_usd": 0.0},
            },
            "budget_tokens": 50_000,
            "budget_remaining": 14_000,
        }
    }
    unpriced = [r for r in caplog.records if "claude-unpriced" in r.getMessage()]
    assert len(unpriced) == 1, "an unknown model is warned about once"
    assert (await usage.view(NOW - timedelta(days=1)))["today"]["total_tokens"] == 99_000
    over = AiUsage(engine, dataclasses.replace(settings, daily_token_budget=1_000))
    assert (await over.view(NOW))["today"]["budget_remaining"] == 0


async def test_an_empty_day_views_as_zero(api: MessagesApiServer, engine: AsyncEngine) -> None:
    usage = AiUsage(engine, ai_settings(api)[0])
    view = await usage.view(NOW)
    budget = ai_settings(api)[0].daily_token_budget
    assert view["today"]["total_tokens"] == 0
    assert view["today"]["by_model"] == {}
    assert view["today"]["budget_remaining"] == budget
