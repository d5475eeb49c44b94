"""Builds the orchestrator from the settings: the optimiser always, the AI strategist when
ANTHROPIC_API_KEY is set."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from brain.feeds.base import timeframe_delta
from brain.notifier import Notifier
from brain.orchestrator.ai import AiStrategist
from brain.orchestrator.ai_usage import AiUsage
from brain.orchestrator.cycle import Orchestrator
from brain.orchestrator.optimiser import Optimiser, WorkerPool
from shared.settings import Settings


def open_orchestrator(
    settings: Settings, sql: AsyncEngine, notifier: Notifier, *, saved: Mapping[str, Any] | None
) -> Orchestrator:
    """``saved``: the orchestrator's state as the last committed step left it."""
    usage = AiUsage(sql, settings.ai)
    key = settings.secrets.anthropic_api_key
    ai = None
    if key is not None and settings.orchestrator.strategist == "auto":
        ai = AiStrategist(settings.ai, key, usage)
    optimiser = Optimiser(settings, WorkerPool())
    orchestrator = Orchestrator(settings, sql, notifier, usage, optimiser=optimiser, ai=ai)
    orchestrator.restore(saved)
    return orchestrator


def history_size(settings: Settings) -> int:
    """Candle batches the engine keeps: the optimiser's look-back and a day to warm up on."""
    span = timedelta(days=settings.orchestrator.lookback_days + 1)
    return int(span / timeframe_delta(settings.market.timeframe)) + 1
