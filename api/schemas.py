"""JSON Schemas (OpenAPI 3.1 / JSON Schema 2020-12) of what the Data API returns.

Units are stated where they matter: outside ``/v1/risk``, ``*_pct`` values are percents
(1.5 means 1.5 %); in ``/v1/risk`` they are fractions (0.006 means 0.6 %). Objects allow
additional properties, so the brain can add fields without breaking a client.
"""

from __future__ import annotations

from typing import Any

from api.errors import ErrorCode
from api.params import ACTIONS, CURSOR_PATTERN, MAX_LIMIT, SYMBOL_PATTERN

Schema = dict[str, Any]

PERCENT = "Percent: 1.5 means 1.5 %."
FRACTION = "Fraction, not percent: 0.006 means 0.6 %."


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    kind = schema["type"]
    return {**schema, "type": [kind, "null"]}


def number(description: str | None = None) -> Schema:
    return {"type": "number", **({"description": description} if description else {})}


def integer(description: str | None = None, minimum: int | None = None) -> Schema:
    schema: Schema = {"type": "integer"}
    if minimum is not None:
        schema["minimum"] = minimum
    if description:
        schema["description"] = description
    return schema


def string(description: str | None = None, **extra: Any) -> Schema:
    return {"type": "string", **extra, **({"description": description} if description else {})}


def moment(description: str | None = None) -> Schema:
    return string(description or "UTC date-time, ISO 8601 with Z.", format="date-time")


def obj(properties: dict[str, Schema], required: list[str] | None = None) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
    }


META = obj(
    {
        "timestamp": moment("When the response was made (UTC, whole seconds)."),
        "mode": string("Trading mode of the brain.", examples=["paper"]),
        "version": string("Version of the Data API."),
    }
)
PAGE_META = obj(
    {
        **META["properties"],
        "next_cursor": nullable(
            string("Pass as ?cursor= for the next (older) page; null on the last page.")
        ),
    }
)
ERROR = obj(
    {
        "error": obj(
            {
                "code": string(enum=[code.value for code in ErrorCode]),
                "message": string("What went wrong; names the parameter when one was bad."),
            }
        ),
        "meta": ref("Meta"),
    }
)

SYSTEM = obj(
    {
        "status": string(
            "running: heartbeat fresh; stale: heartbeat older than the stale setting (or none); "
            "stopped: the brain shut down.",
            enum=["running", "stale", "stopped"],
        ),
        "mode": string(examples=["paper"]),
        "uptime_seconds": nullable(integer("Seconds since started_at; null once stopped.", 0)),
        "version": nullable(string("Version of the brain.")),
        "started_at": nullable(moment()),
        "last_scan": nullable(moment("When the brain last scanned the market.")),
        "paused": {"type": "boolean"},
        "halted": {"type": "boolean"},
        "halt_reason": nullable(string()),
        "feed": nullable(string("Market feed: replay, exchange or synthetic.")),
        "market_time": nullable(moment("Time of the newest candle the brain has seen.")),
        "heartbeat_at": nullable(moment("Wall-clock time of the brain's newest heartbeat.")),
        "heartbeat_age_seconds": nullable(number("Seconds since heartbeat_at.")),
    }
)
PORTFOLIO = obj(
    {
        "total_value": number("Cash plus positions at current prices (quote currency)."),
        "cash": number(),
        "unrealized_pnl": number(),
        "position_count": integer(minimum=0),
        "allocation": obj(
            {
                "cash_pct": number(f"Share of total value in cash. {PERCENT}"),
                "positions_pct": number(f"Share of total value in positions. {PERCENT}"),
            }
        ),
        "realized_pnl": number(),
        "starting_cash": number(),
    },
    required=["total_value", "cash", "unrealized_pnl", "position_count", "allocation"],
)
POSITION = obj(
    {
        "symbol": string(examples=["BTC/USDT"]),
        "qty": number(),
        "entry_price": number(),
        "current_price": number(),
        "unrealized_pnl": number(),
        "unrealized_pnl_pct": number(PERCENT),
        "stop_loss": nullable(number()),
        "take_profit": nullable(number()),
        "opened_at": moment(),
    }
)
TRADE = obj(
    {
        "id": integer(),
        "symbol": string(),
        "action": string(enum=list(ACTIONS)),
        "qty": number(),
        "price": number(),
        "fee": number(),
        "pnl": nullable(number("Set on trades that close a position, null on opening ones.")),
        "pnl_pct": nullable(number(f"Set on closing trades. {PERCENT}")),
        "strategy_version": string(),
        "executed_at": moment(),
    }
)
PERFORMANCE_DAY = obj(
    {
        "date": string("The UTC day.", format="date"),
        "portfolio_value": number(),
        "daily_pnl": number(),
        "daily_pnl_pct": number(PERCENT),
        "trade_count": integer(minimum=0),
        "win_count": integer(minimum=0),
        "loss_count": integer(minimum=0),
        "fees": number(),
    }
)
RISK = obj(
    {
        "limits": obj(
            {
                "max_position_pct": number(f"Largest position, of portfolio value. {FRACTION}"),
                "max_positions": integer(minimum=0),
                "max_daily_loss_pct": number(FRACTION),
                "max_drawdown_pct": number(FRACTION),
                "max_daily_trades": integer(minimum=0),
            }
        ),
        "current": obj(
            {
                "daily_pnl": number(),
                "daily_pnl_pct": number(FRACTION),
                "daily_trades": integer(minimum=0),
                "consecutive_losses": integer(minimum=0),
                "drawdown_pct": number(FRACTION),
                "halted": {"type": "boolean"},
                "halt_reason": nullable(string()),
            }
        ),
    }
)
MARKET_ITEM = obj(
    {
        "symbol": string(),
        "price": number(),
        "regime": nullable(string(examples=["ranging", "trending", "volatile"])),
        "trend": nullable(string(examples=["up", "down", "neutral"])),
        "rsi": nullable(number("0 to 100.")),
        "ema_fast": nullable(number()),
        "ema_slow": nullable(number()),
        "volume_ratio": nullable(number("Volume over its average (1.15 means 15 % above).")),
        "signal": nullable(string("The signal of the latest scan, if any.")),
        "scanned_at": moment(),
    }
)
SIGNAL = obj(
    {
        "id": integer(),
        "symbol": string(),
        "action": string(enum=list(ACTIONS)),
        "confidence": number("0 to 1."),
        "strategy_version": string(),
        "executed": {"type": "boolean"},
        "rejected_reason": nullable(string()),
        "created_at": moment(),
    }
)
STRATEGY_VERSION = obj(
    {
        "version": string(examples=["v20260208_010000"]),
        "code_hash": string(),
        "risk_tier": integer(minimum=1),
        "description": string(),
        "parameters": {"type": "object", "description": "The version's strategy parameters."},
        "deployed_at": nullable(moment()),
    },
    required=["version"],
)
PAPER_SIDE = {
    "type": "object",
    "description": "One side of a paper test: return_pct, pnl, trades, win_rate, fees, "
    "max_drawdown (fraction); the active side also names its version.",
}
STRATEGY = obj(
    {
        "active": {"oneOf": [ref("StrategyVersion"), {"type": "null"}]},
        "paper_test": {
            "oneOf": [
                obj(
                    {
                        "version": string(),
                        "status": string(enum=["running", "passed", "failed"]),
                        "started_at": moment(),
                        "ends_at": moment(),
                        "completed_at": nullable(moment()),
                        "risk_tier": integer(minimum=1),
                        "days": integer(minimum=1),
                        "candidate": PAPER_SIDE,
                        "active": PAPER_SIDE,
                        "results": {
                            "oneOf": [
                                {"type": "object", "description": "The verdict's figures."},
                                {"type": "null"},
                            ]
                        },
                    },
                    required=["version", "status", "started_at", "ends_at"],
                ),
                {"type": "null"},
            ]
        },
        "recent_versions": {"type": "array", "items": {"type": "object"}},
    }
)
AI_USAGE = obj(
    {
        "today": obj(
            {
                "total_tokens": integer(minimum=0),
                "total_cost_usd": number(),
                "by_model": {
                    "type": "object",
                    "additionalProperties": obj(
                        {
                            "calls": integer(minimum=0),
                            "tokens": integer(minimum=0),
                            "cost_usd": number(),
                        },
                        required=[],
                    ),
                },
                "date": string("The UTC day of the wall clock these figures cover."),
                "budget_tokens": integer(minimum=0),
                "budget_remaining": nullable(number("Tokens left in today's budget.")),
            },
            required=[],
        )
    },
    required=["today"],
)
BENCHMARKS = {
    "type": "object",
    "description": "The truth benchmarks: total_trades, win_rate (fraction), profit_factor, "
    "avg_win, avg_loss, max_drawdown (fraction), and the rest of the 17 metrics.",
}
HEALTH = obj(
    {
        "status": string(enum=["ok", "unavailable"]),
        "store": string(enum=["ok", "unavailable"]),
        "database": string(enum=["ok", "unavailable"]),
    }
)

COMPONENT_SCHEMAS: dict[str, Schema] = {
    "Meta": META,
    "PageMeta": PAGE_META,
    "Error": ERROR,
    "System": SYSTEM,
    "Portfolio": PORTFOLIO,
    "Position": POSITION,
    "Trade": TRADE,
    "PerformanceDay": PERFORMANCE_DAY,
    "Risk": RISK,
    "MarketItem": MARKET_ITEM,
    "Signal": SIGNAL,
    "StrategyVersion": STRATEGY_VERSION,
    "Strategy": STRATEGY,
    "AiUsage": AI_USAGE,
    "Benchmarks": BENCHMARKS,
    "Health": HEALTH,
}

LIMIT = integer(f"Rows per page, 1 to {MAX_LIMIT}.", 1) | {"maximum": MAX_LIMIT, "default": 50}
SYMBOL = string("Market symbol, such as BTC/USDT.", pattern=SYMBOL_PATTERN)
CURSOR = string("meta.next_cursor of the previous page, as given.", pattern=CURSOR_PATTERN)
ACTION = string("Signal action.", enum=list(ACTIONS))
