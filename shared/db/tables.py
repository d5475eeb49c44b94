"""The SQL history: what the brain records and the Data API serves as history (Core tables).

Money and quantities are ``Double`` because they travel as JSON floats; every timestamp is an
aware UTC datetime (``UTCDateTime``). Changing a table here needs a new migration under
``shared/db/migrations/versions``.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
)

from shared.db.types import UTCDateTime

# Stable constraint names, so migrations (and SQLite batch mode) can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# BIGINT on PostgreSQL; INTEGER on SQLite, where only "INTEGER PRIMARY KEY" is the rowid alias
# that autoincrements.
BigId = BigInteger().with_variant(Integer, "sqlite")

SYMBOL = 32
VERSION = 64


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


ACTIONS = ("BUY", "SELL", "CLOSE")
STRATEGY_STATUSES = ("candidate", "active", "retired", "rejected")
PAPER_TEST_STATUSES = ("running", "passed", "failed")

trades = Table(
    "trades",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("symbol", String(SYMBOL), nullable=False),
    Column("action", String(8), nullable=False),
    Column("qty", Double, nullable=False),
    Column("price", Double, nullable=False),
    Column("fee", Double, nullable=False, server_default="0"),
    Column("pnl", Double, nullable=True),  # set on trades that close a position
    Column("pnl_pct", Double, nullable=True),  # percent: 3.2 means 3.2 %
    Column("strategy_version", String(VERSION), nullable=False),
    Column("executed_at", UTCDateTime, nullable=False),
    CheckConstraint(_in("action", ACTIONS), name="action"),
    Index("ix_trades_executed_at", "executed_at"),
    Index("ix_trades_symbol_executed_at", "symbol", "executed_at"),
)

signals = Table(
    "signals",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("symbol", String(SYMBOL), nullable=False),
    Column("action", String(8), nullable=False),
    Column("confidence", Double, nullable=False),
    Column("strategy_version", String(VERSION), nullable=False),
    Column("executed", Boolean, nullable=False, server_default=false()),
    Column("rejected_reason", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint(_in("action", ACTIONS), name="action"),
    Index("ix_signals_created_at", "created_at"),
    Index("ix_signals_symbol_created_at", "symbol", "created_at"),
    Index("ix_signals_action_created_at", "action", "created_at"),
)

daily_performance = Table(
    "daily_performance",
    metadata,
    Column("date", Date, primary_key=True),  # the UTC day
    Column("portfolio_value", Double, nullable=False),
    Column("daily_pnl", Double, nullable=False),
    Column("daily_pnl_pct", Double, nullable=False),  # percent
    Column("trade_count", Integer, nullable=False, server_default="0"),
    Column("win_count", Integer, nullable=False, server_default="0"),
    Column("loss_count", Integer, nullable=False, server_default="0"),
    Column("fees", Double, nullable=False, server_default="0"),
)

strategy_versions = Table(
    "strategy_versions",
    metadata,
    Column("version", String(VERSION), primary_key=True),  # like v20260208_010000
    Column("code_hash", String(128), nullable=False),
    Column("risk_tier", Integer, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("parameters", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("deployed_at", UTCDateTime, nullable=True),
    Column("retired_at", UTCDateTime, nullable=True),
    CheckConstraint("risk_tier BETWEEN 1 AND 3", name="risk_tier"),
    CheckConstraint(_in("status", STRATEGY_STATUSES), name="status"),
    Index("ix_strategy_versions_status", "status"),
)

paper_tests = Table(
    "paper_tests",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("version", String(VERSION), ForeignKey("strategy_versions.version"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=False),
    Column("completed_at", UTCDateTime, nullable=True),
    Column("results", JSON, nullable=True),
    CheckConstraint(_in("status", PAPER_TEST_STATUSES), name="status"),
    Index("ix_paper_tests_status", "status"),
    Index("ix_paper_tests_started_at", "started_at"),
)

ai_calls = Table(
    "ai_calls",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("called_at", UTCDateTime, nullable=False),
    Column("model", String(128), nullable=False),
    Column("purpose", String(128), nullable=False),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    Column("cost_usd", Double, nullable=False),
    Index("ix_ai_calls_called_at", "called_at"),
)

# The brain's open positions, so a restart resumes them (crash recovery).
positions = Table(
    "positions",
    metadata,
    Column("symbol", String(SYMBOL), primary_key=True),
    Column("qty", Double, nullable=False),
    Column("entry_price", Double, nullable=False),
    Column("cost", Double, nullable=False, server_default="0"),  # cash paid, entry fees included
    Column("stop_loss", Double, nullable=True),
    Column("take_profit", Double, nullable=True),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("strategy_version", String(VERSION), nullable=False),
)

# The brain's own state beside its positions (cash, risk counters, the market time it has
# processed through, orders waiting for the next price): one row, rewritten in the same
# transaction as each step's trades, so a restart resumes exactly where the last commit left.
brain_state = Table(
    "brain_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("market_time", UTCDateTime, nullable=False),
    Column("state", JSON, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("id = 1", name="single_row"),
)

# The transactional outbox: events written in the same transaction as the state they describe,
# moved to the event log by the relay. Row ids become event ids, so they must never be reused:
# SQLite's AUTOINCREMENT guarantees that even after the newest rows are deleted.
outbox = Table(
    "outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("event", String(64), nullable=False),
    Column("data", JSON, nullable=False),
    Column("timestamp", UTCDateTime, nullable=False),
    sqlite_autoincrement=True,
)
