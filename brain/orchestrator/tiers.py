"""How far a candidate departs from the active version, the risk tier that follows, and the
parameter diff a deploy announces."""

from __future__ import annotations

from typing import Any

from brain.strategy import StrategyParams
from shared.settings import OrchestratorSettings


def departure(active: StrategyParams, candidate: StrategyParams) -> float:
    """The largest change of any parameter, as a fraction of that parameter's allowed range."""
    old, new = active.to_dict(), candidate.to_dict()
    return max(
        abs(new[name] - old[name]) / (high - low)
        for name, (low, high) in StrategyParams.PARAM_BOUNDS.items()
    )


def risk_tier(
    active: StrategyParams, candidate: StrategyParams, rules: OrchestratorSettings
) -> int:
    moved = departure(active, candidate)
    if moved >= rules.tier3_departure:
        return 3
    return 2 if moved >= rules.tier2_departure else 1


def paper_days(tier: int, rules: OrchestratorSettings) -> int:
    return {1: rules.tier1_paper_days, 2: rules.tier2_paper_days}.get(tier, rules.tier3_paper_days)


def changes(active: StrategyParams, candidate: StrategyParams) -> dict[str, dict[str, Any]]:
    """``{"rsi_exit": {"from": 78.0, "to": 80.0}, ...}``: only the parameters that differ."""
    old, new = active.to_dict(), candidate.to_dict()
    return {name: {"from": old[name], "to": new[name]} for name in old if old[name] != new[name]}
