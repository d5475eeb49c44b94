"""What a strategist answers: a candidate parameter set, or why there is none."""

from __future__ import annotations

from dataclasses import dataclass

from brain.strategy import StrategyParams


@dataclass(frozen=True, slots=True)
class Proposal:
    """A candidate strategy version's parameters, and what the strategist says of them."""

    params: StrategyParams
    description: str
    strategist: str  # "optimiser" or "ai"


class NoProposal(Exception):
    """The strategist has no candidate this cycle; the message says why (it is logged)."""
