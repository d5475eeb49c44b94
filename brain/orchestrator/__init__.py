"""The orchestrator: the nightly cycle that evolves the strategy (docs/orchestrator.md)."""
