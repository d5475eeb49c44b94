"""Load TradingBrain's trades and daily performance into pandas, and summarise them.

    pip install pandas httpx
    API_KEY=... python examples/pandas_analysis.py --url http://127.0.0.1:8080

``load_trades`` follows ``meta.next_cursor`` until the last page, so it returns every trade
that matches, however many; ``load_performance`` reads the daily series. Both return frames
sorted oldest first, with real dtypes (UTC timestamps, floats with NaN where the API says
null). In a notebook: ``client = api_client(url, key)``, then ``load_trades(client)``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import httpx
import pandas as pd

TRADE_COLUMNS = [
    "id", "symbol", "action", "qty", "price", "fee", "pnl", "pnl_pct",
    "strategy_version", "executed_at",
]  # fmt: skip
PERFORMANCE_COLUMNS = [
    "date", "portfolio_value", "daily_pnl", "daily_pnl_pct", "trade_count",
    "win_count", "loss_count", "fees",
]  # fmt: skip
MAX_PAGE = 500  # the API's largest `limit`
FLOATS = dict.fromkeys(["portfolio_value", "daily_pnl", "daily_pnl_pct", "fees"], "float64")


def api_client(url: str, key: str, *, timeout: float = 30.0) -> httpx.Client:
    """A client of the Data API at ``url`` (http://host:port) that sends the bearer key."""
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=timeout)


def _get(client: httpx.Client, path: str, params: dict[str, Any]) -> dict[str, Any]:
    response = client.get(path, params={k: v for k, v in params.items() if v is not None})
    if response.is_error:  # the error envelope says why: {"error": {"code", "message"}, ...}
        error = response.json().get("error", {})
        raise RuntimeError(f"{path}: {response.status_code} {error.get('code')}: {error}")
    body: dict[str, Any] = response.json()
    return body


def load_trades(
    client: httpx.Client,
    *,
    symbol: str | None = None,
    since: str | None = None,
    until: str | None = None,
    page_size: int = MAX_PAGE,
) -> pd.DataFrame:
    """Every trade matching the filters (ISO 8601 ``since``/``until``), oldest first, fetched
    ``page_size`` rows a request."""
    rows: list[dict[str, Any]] = []
    params = {"limit": page_size, "symbol": symbol, "since": since, "until": until}
    while True:
        body = _get(client, "/v1/trades", params)
        rows += body["data"]
        cursor = body["meta"].get("next_cursor")
        if not cursor:  # null on the last page
            break
        params["cursor"] = cursor  # the same filters, the next (older) page
    trades = pd.DataFrame(rows, columns=TRADE_COLUMNS)
    trades = trades.astype(dict.fromkeys(["qty", "price", "fee", "pnl", "pnl_pct"], "float64"))
    trades["executed_at"] = pd.to_datetime(trades["executed_at"], utc=True, format="ISO8601")
    trades["notional"] = trades["qty"] * trades["price"]
    return trades.sort_values(["executed_at", "id"], ignore_index=True)


def load_performance(
    client: httpx.Client, *, since: str | None = None, until: str | None = None
) -> pd.DataFrame:
    """The daily series (ISO dates ``since``/``until``, inclusive), oldest day first, indexed
    by date, with the running drawdown of the portfolio value from its peak (a fraction)."""
    body = _get(client, "/v1/performance", {"since": since, "until": until})
    days = pd.DataFrame(body["data"], columns=PERFORMANCE_COLUMNS)
    days["date"] = pd.to_datetime(days["date"], format="ISO8601")
    counts = {"trade_count": "int64", "win_count": "int64", "loss_count": "int64"}
    days = days.set_index("date").sort_index().astype({**FLOATS, **counts})
    peak = days["portfolio_value"].cummax()
    days["drawdown"] = (peak - days["portfolio_value"]) / peak
    return days


def per_symbol(trades: pd.DataFrame) -> pd.DataFrame:
    """Per market: trades, closed trades, win rate, realised P&L and fees."""
    closed = trades[trades["pnl"].notna()]
    summary = pd.DataFrame(
        {
            "trades": trades.groupby("symbol").size(),
            "closed": closed.groupby("symbol").size(),
            "wins": closed[closed["pnl"] > 0].groupby("symbol").size(),
            "realised_pnl": closed.groupby("symbol")["pnl"].sum(),
            "fees": trades.groupby("symbol")["fee"].sum(),
        }
    ).fillna(0)
    summary = summary.astype({"trades": "int64", "closed": "int64", "wins": "int64"})
    summary["win_rate"] = summary["wins"] / summary["closed"].where(summary["closed"] > 0)
    return summary.sort_values("realised_pnl", ascending=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="the Data API")
    parser.add_argument("--symbol", help="one market, such as BTC/USDT")
    parser.add_argument("--since", help="ISO 8601 date-time (trades) or date (performance)")
    args = parser.parse_args(argv)
    key = os.environ.get("API_KEY", "").split(",")[0]
    if not key:
        print("set API_KEY to one of the API's keys", file=sys.stderr)
        return 2
    with api_client(args.url, key) as client:
        trades = load_trades(client, symbol=args.symbol, since=args.since)
        days = load_performance(client, since=args.since[:10] if args.since else None)
    pd.set_option("display.width", 120)
    print(f"{len(trades)} trades, {trades['pnl'].notna().sum()} closed\n")
    print(per_symbol(trades).round(4), end="\n\n")
    print(days[["portfolio_value", "daily_pnl", "trade_count", "drawdown"]].round(4))
    if not days.empty:
        print(f"\nmax drawdown {days['drawdown'].max():.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
