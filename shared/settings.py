"""Typed, frozen settings. Defaults live in config/settings.toml; this module only says what
each key is and what values it may take (``Annotated[..., Between(lo, hi)]``, ``Literal``).

Loading (files, TB_* overrides, secrets from the environment and .env) is in
``shared.config``; ``load_settings()`` there returns a ``Settings``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal


@dataclass(frozen=True, slots=True)
class Between:
    """An inclusive numeric range constraint for a setting."""

    low: float | None = None
    high: float | None = None


@dataclass(frozen=True, slots=True)
class NonEmpty:
    """A string or list setting that must not be empty."""


class Secret:
    """A secret value that never shows itself in a repr, str or log line."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


Fraction = Annotated[float, Between(0.0, 1.0)]
Seconds = Annotated[float, Between(0.0, 3600.0)]
Port = Annotated[int, Between(1, 65535)]


@dataclass(frozen=True, slots=True)
class ApiSettings:
    enabled: bool
    host: Annotated[str, NonEmpty()]
    port: Port
    workers: Annotated[int, Between(1, 64)]
    cors_origins: tuple[str, ...]
    metrics_public: bool
    access_log: bool
    stale_after: Annotated[float, Between(0.1, 86_400.0)]
    follow_block: Annotated[float, Between(0.01, 60.0)]
    retry_initial: Annotated[float, Between(0.001, 60.0)]
    retry_max: Annotated[float, Between(0.001, 3600.0)]
    query_timeout: Annotated[float, Between(0.1, 3600.0)]
    health_timeout: Annotated[float, Between(0.1, 60.0)]
    history_cache_entries: Annotated[int, Between(0, 100_000)]
    ws_send_queue: Annotated[int, Between(1, 1_000_000)]
    ws_max_clients: Annotated[int, Between(1, 100_000)]
    ws_heartbeat_interval: Annotated[float, Between(0.1, 3600.0)]
    ws_auth_timeout: Annotated[float, Between(0.1, 60.0)]
    ws_outage_grace: Annotated[float, Between(0.0, 3600.0)]
    ws_ping_interval: Annotated[float, Between(0.1, 3600.0)]
    ws_ping_timeout: Annotated[float, Between(0.1, 3600.0)]
    ws_permessage_deflate: bool


@dataclass(frozen=True, slots=True)
class NotificationSettings:
    """Which events send Telegram alerts; names as in the plan (see the catalog's switches)."""

    trade_executed: bool
    stop_triggered: bool
    risk_halt: bool
    risk_resumed: bool
    rollback: bool
    strategy_deployed: bool
    system_online: bool
    system_shutdown: bool
    system_error: bool
    websocket_failed: bool
    websocket_feed_recovered: bool
    trading_paused: bool
    trading_resumed: bool
    daily_summary: bool
    weekly_report: bool
    signal_generated: bool
    signal_rejected: bool
    scan_complete: bool
    paper_test_started: bool
    paper_test_completed: bool
    orchestrator_cycle_started: bool
    orchestrator_cycle_completed: bool


@dataclass(frozen=True, slots=True)
class TelegramSettings:
    """The alert relay and the chat commands (TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID turn
    them on); see docs/telegram.md."""

    base_url: Annotated[str, NonEmpty()]
    consumer_group: Annotated[str, NonEmpty()]
    consumer_name: Annotated[str, NonEmpty()]
    claim_idle: Annotated[float, Between(1.0, 86_400.0)]
    retry_initial: Annotated[float, Between(0.001, 60.0)]
    retry_max: Annotated[float, Between(0.001, 3600.0)]
    poll_timeout: Annotated[float, Between(0.0, 60.0)]
    drain_timeout: Annotated[float, Between(0.0, 3600.0)]
    notifications: NotificationSettings


@dataclass(frozen=True, slots=True)
class RiskSettings:
    max_position_pct: Fraction
    max_positions: Annotated[int, Between(1, 1000)]
    max_daily_loss_pct: Fraction
    max_drawdown_pct: Fraction
    max_daily_trades: Annotated[int, Between(1, 100_000)]
    max_consecutive_losses: Annotated[int, Between(1, 1000)]


@dataclass(frozen=True, slots=True)
class MarketSettings:
    feed: Literal["replay", "exchange", "synthetic"]
    symbols: Annotated[tuple[str, ...], NonEmpty()]
    timeframe: Literal["1m", "5m", "15m", "1h", "4h", "1d"]
    replay_dir: Annotated[str, NonEmpty()]
    replay_speed: Annotated[float, Between(0.0, 1_000_000.0)]
    replay_exit_at_end: bool
    exchange: Annotated[str, NonEmpty()]
    exchange_poll_interval: Annotated[float, Between(0.1, 3600.0)]
    exchange_retry_max: Annotated[float, Between(0.1, 3600.0)]
    feed_lost_after: Annotated[float, Between(1.0, 86_400.0)]
    synthetic_seed: int
    synthetic_start: Annotated[str, NonEmpty()]


@dataclass(frozen=True, slots=True)
class PaperSettings:
    starting_cash: Annotated[float, Between(1.0, 1e12)]
    fee_rate: Annotated[float, Between(0.0, 0.1)]
    slippage: Annotated[float, Between(0.0, 0.1)]


@dataclass(frozen=True, slots=True)
class StrategySettings:
    """The parameters of the first strategy version (the nightly cycle evolves them). The ranges
    are the strategy's own bounds (brain.strategy.StrategyParams.PARAM_BOUNDS; a test keeps
    them equal), so a bad value stops start-up here, naming the key."""

    ema_fast: Annotated[int, Between(2, 200)]
    ema_slow: Annotated[int, Between(3, 500)]
    rsi_period: Annotated[int, Between(2, 100)]
    atr_period: Annotated[int, Between(2, 100)]
    volume_period: Annotated[int, Between(2, 200)]
    rsi_entry_min: Annotated[float, Between(0.0, 100.0)]
    rsi_entry_max: Annotated[float, Between(0.0, 100.0)]
    rsi_exit: Annotated[float, Between(0.0, 100.0)]
    volume_ratio_min: Annotated[float, Between(0.0, 10.0)]
    trend_threshold_pct: Annotated[float, Between(0.0, 10.0)]
    volatile_atr_pct: Annotated[float, Between(0.05, 50.0)]
    stop_loss_atr: Annotated[float, Between(0.1, 20.0)]
    take_profit_atr: Annotated[float, Between(0.1, 50.0)]
    min_confidence: Fraction


@dataclass(frozen=True, slots=True)
class OrchestratorSettings:
    """The nightly cycle: when it runs, how the optimiser searches, how candidates are tiered,
    paper-tested and judged, and the guard rails that roll a deploy back."""

    enabled: bool
    cycle_hour: Annotated[int, Between(0, 23)]
    cycle_minute: Annotated[int, Between(0, 59)]
    strategist: Literal["auto", "optimiser"]
    lookback_days: Annotated[float, Between(0.5, 90.0)]
    min_history_days: Annotated[float, Between(0.1, 90.0)]
    walk_forward_folds: Annotated[int, Between(2, 20)]
    candidate_budget: Annotated[int, Between(1, 100_000)]
    seed: int
    min_edge_pct: Annotated[float, Between(0.0, 100.0)]
    tier2_departure: Fraction
    tier3_departure: Fraction
    tier1_paper_days: Annotated[int, Between(1, 90)]
    tier2_paper_days: Annotated[int, Between(1, 90)]
    tier3_paper_days: Annotated[int, Between(1, 90)]
    paper_min_trades: Annotated[int, Between(0, 100_000)]
    rollback_window_days: Annotated[float, Between(0.0, 90.0)]
    rollback_max_drawdown_pct: Fraction
    rollback_max_losses: Annotated[int, Between(1, 100_000)]
    worker_timeout: Seconds


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """What a model costs, in USD per million tokens."""

    model: Annotated[str, NonEmpty()]
    input: Annotated[float, Between(0.0, 1e6)]
    output: Annotated[float, Between(0.0, 1e6)]


@dataclass(frozen=True, slots=True)
class AiSettings:
    """The AI strategist (runs when ANTHROPIC_API_KEY is set; see [orchestrator] strategist)."""

    model: Annotated[str, NonEmpty()]
    max_tokens: Annotated[int, Between(1, 1_000_000)]
    daily_token_budget: Annotated[int, Between(0, 1_000_000_000)]
    base_url: str
    timeout: Annotated[float, Between(0.1, 3600.0)]
    max_retries: Annotated[int, Between(0, 20)]
    prices: tuple[ModelPrice, ...]


@dataclass(frozen=True, slots=True)
class BrainSettings:
    heartbeat_interval: Annotated[float, Between(0.1, 3600.0)]
    snapshot_interval: Annotated[float, Between(0.0, 3600.0)]
    max_pending_steps: Annotated[int, Between(1, 1_000_000)]
    shutdown_timeout: Annotated[float, Between(0.1, 3600.0)]


@dataclass(frozen=True, slots=True)
class StoreSettings:
    backend: Literal["sqlite", "redis"]
    sqlite_path: Annotated[str, NonEmpty()]
    key_prefix: Annotated[str, NonEmpty()]
    max_events: Annotated[int, Between(100, 100_000_000)]
    max_snapshot_changes: Annotated[int, Between(10, 1_000_000)]
    poll_interval: Annotated[float, Between(0.001, 10.0)]
    connect_attempts: Annotated[int, Between(1, 1000)]
    connect_retry_delay: Seconds


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    sqlite_path: Annotated[str, NonEmpty()]


@dataclass(frozen=True, slots=True)
class OutboxSettings:
    batch_size: Annotated[int, Between(1, 100_000)]
    poll_interval: Annotated[float, Between(0.001, 60.0)]
    retry_initial: Annotated[float, Between(0.001, 60.0)]
    retry_max: Annotated[float, Between(0.001, 3600.0)]


@dataclass(frozen=True, slots=True)
class Secrets:
    """Secrets come only from the environment or a .env file, never from settings files."""

    api_keys: tuple[Secret, ...]  # API_KEY, comma separated (several for rotation)
    redis_url: Secret | None  # REDIS_URL
    database_url: Secret | None  # DATABASE_URL
    telegram_bot_token: Secret | None  # TELEGRAM_BOT_TOKEN
    telegram_chat_id: Secret | None  # TELEGRAM_CHAT_ID
    anthropic_api_key: Secret | None  # ANTHROPIC_API_KEY


@dataclass(frozen=True, slots=True)
class Settings:
    api: ApiSettings
    telegram: TelegramSettings
    risk: RiskSettings
    market: MarketSettings
    paper: PaperSettings
    strategy: StrategySettings
    orchestrator: OrchestratorSettings
    ai: AiSettings
    brain: BrainSettings
    store: StoreSettings
    database: DatabaseSettings
    outbox: OutboxSettings
    secrets: Secrets
