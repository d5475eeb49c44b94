"""Guard rails after a deploy: for a while the live book is watched, and a drawdown or a run of
losses past the settings' limits rolls the deploy back to the version it replaced."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from brain.ledger import Step
from shared.settings import OrchestratorSettings
from shared.timeutil import parse_iso, to_iso


@dataclass(slots=True)
class DeployWatch:
    version: str  # the deployed version
    restore: str  # the version it replaced, restored on a breach
    until: datetime
    peak: float
    max_drawdown: float = 0.0  # fraction of the peak
    losses: int = 0

    def observe(self, value: float, step: Step) -> None:
        """After each live step: its value and the losing trades it closed."""
        self.peak = max(self.peak, value)
        self.max_drawdown = max(self.max_drawdown, 1.0 - value / self.peak)
        self.losses += sum(1 for _, fill in step.trades if fill.pnl is not None and fill.pnl < 0)

    def breach(self, rules: OrchestratorSettings) -> str | None:
        """Why the deploy must be rolled back, or None while it is within its guard rails."""
        if self.max_drawdown > rules.rollback_max_drawdown_pct:
            return (
                f"drawdown {self.max_drawdown:.2%} since {self.version} was deployed exceeds "
                f"{rules.rollback_max_drawdown_pct:.2%}"
            )
        if self.losses >= rules.rollback_max_losses:
            return (
                f"{self.losses} losing trades since {self.version} was deployed "
                f"(limit {rules.rollback_max_losses})"
            )
        return None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "until": to_iso(self.until)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeployWatch:
        return cls(**{**data, "until": parse_iso(data["until"])})
