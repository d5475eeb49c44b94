"""Every endpoint, through a real server on each store backend, against the plan's shapes."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from shared.store.base import SnapshotName, Store
from tests.api import brain_state
from tests.api.conftest import Api
from tests.api.helpers import ISO_Z, assert_error, assert_meta, wait_for_status
from tests.support.services import async_wait_until

PLAN_FIELDS: dict[str, set[str]] = {
    "system": {
        "status",
        "mode",
        "uptime_seconds",
        "version",
        "started_at",
        "last_scan",
        "paused",
        "halted",
        "halt_reason",
    },
    "portfolio": {"total_value", "cash", "unrealized_pnl", "position_count", "allocation"},
    "position": {
        "symbol",
        "qty",
        "entry_price",
        "current_price",
        "unrealized_pnl",
        "unrealized_pnl_pct",
        "stop_loss",
        "take_profit",
        "opened_at",
    },
    "trade": {
        "id",
        "symbol",
        "action",
        "qty",
        "price",
        "fee",
        "pnl",
        "pnl_pct",
        "strategy_version",
        "executed_at",
    },
    "performance": {
        "date",
        "portfolio_value",
        "daily_pnl",
        "daily_pnl_pct",
        "trade_count",
        "win_count",
        "loss_count",
        "fees",
    },
    "market": {
        "symbol",
        "price",
        "regime",
        "trend",
        "rsi",
        "ema_fast",
        "ema_slow",
        "volume_ratio",
        "signal",
        "scanned_at",
    },
    "signal": {
        "id",
        "symbol",
        "action",
        "confidence",
        "strategy_version",
        "executed",
        "rejected_reason",
        "created_at",
    },
}


async def _body(api: Api, path: str, *, paged: bool = False) -> Any:
    response = await api.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"data", "meta"}
    assert_meta(body["meta"], paged=paged)
    return body["data"]


async def test_every_endpoint_serves_the_plans_shapes(
    api: Api, store: Store, history: AsyncEngine
) -> None:
    await brain_state.insert_history(history, trade_count=6, signal_count=6, days=3)
    await brain_state.publish_state(store)
    await wait_for_status(lambda: api.get("/v1/benchmarks"), 200, "the snapshots")

    system = await _body(api, "/v1/system")
    assert PLAN_FIELDS["system"] <= set(system)
    assert system["status"] == "running"
    assert system["mode"] == "paper"
    assert system["version"] == "0.1.0"
    assert 3590 <= system["uptime_seconds"] <= 3700
    assert system["paused"] is False
    assert system["halted"] is False
    assert system["halt_reason"] is None
    assert ISO_Z.match(system["started_at"])
    assert ISO_Z.match(system["last_scan"])
    assert system["feed"] == "replay"

    portfolio = await _body(api, "/v1/portfolio")
    assert PLAN_FIELDS["portfolio"] <= set(portfolio)
    assert portfolio == brain_state.PORTFOLIO
    assert set(portfolio["allocation"]) == {"cash_pct", "positions_pct"}

    positions = await _body(api, "/v1/positions")
    assert positions == brain_state.POSITIONS
    assert all(set(p) == PLAN_FIELDS["position"] for p in positions)

    risk = await _body(api, "/v1/risk")
    assert risk == brain_state.RISK
    assert risk["current"]["daily_pnl_pct"] == -0.006  # a fraction in /v1/risk

    market = await _body(api, "/v1/market")
    assert [m["symbol"] for m in market] == list(brain_state.SYMBOLS)
    assert all(set(m) == PLAN_FIELDS["market"] for m in market)

    strategy = await _body(api, "/v1/strategy")
    assert set(strategy) == {"active", "paper_test", "recent_versions"}
    assert set(strategy["active"]) == {
        "version",
        "code_hash",
        "risk_tier",
        "description",
        "deployed_at",
    }
    assert await _body(api, "/v1/ai/usage") == brain_state.AI_USAGE
    assert await _body(api, "/v1/benchmarks") == brain_state.BENCHMARKS

    trades = await _body(api, "/v1/trades", paged=True)
    assert len(trades) == 6
    assert all(set(t) == PLAN_FIELDS["trade"] for t in trades)
    assert all(ISO_Z.match(t["executed_at"]) for t in trades)
    opening = [t for t in trades if t["action"] == "BUY"]
    closing = [t for t in trades if t["action"] == "SELL"]
    assert opening
    assert all(t["pnl"] is None and t["pnl_pct"] is None for t in opening)
    assert closing
    assert all(t["pnl"] is not None and t["pnl_pct"] is not None for t in closing)

    signals = await _body(api, "/v1/signals", paged=True)
    assert len(signals) == 6
    assert all(set(s) == PLAN_FIELDS["signal"] for s in signals)
    assert {type(s["executed"]) for s in signals} == {bool}

    performance = await _body(api, "/v1/performance")
    assert [day["date"] for day in performance] == ["2024-07-03", "2024-07-02", "2024-07-01"]
    assert all(set(day) == PLAN_FIELDS["performance"] for day in performance)


async def test_snapshot_endpoints_say_brain_unavailable_until_published(
    api: Api, store: Store
) -> None:
    for path in ("/v1/system", "/v1/portfolio", "/v1/positions", "/v1/ai/usage"):
        message = assert_error(await api.get(path), 503, "brain_unavailable")
        assert "not published" in message
    # The orchestrator's documents come later than the brain's: each endpoint on its own.
    docs = brain_state.full_state()
    del docs[SnapshotName.AI_USAGE], docs[SnapshotName.BENCHMARKS]
    await store.snapshots.write(docs)
    await wait_for_status(lambda: api.get("/v1/portfolio"), 200, "the portfolio")
    assert_error(await api.get("/v1/benchmarks"), 503, "brain_unavailable")
    await store.snapshots.write({SnapshotName.BENCHMARKS: brain_state.BENCHMARKS})
    await wait_for_status(lambda: api.get("/v1/benchmarks"), 200, "the benchmarks")


async def test_snapshot_cache_follows_the_brains_writes(api: Api, store: Store) -> None:
    await brain_state.publish_state(store)
    await wait_for_status(lambda: api.get("/v1/portfolio"), 200, "the portfolio")
    for value in (216.0, 217.5, 219.25):
        await store.snapshots.write(
            {SnapshotName.PORTFOLIO: {**brain_state.PORTFOLIO, "total_value": value}}
        )

        async def updated(expected: float = value) -> bool:
            response = await api.get("/v1/portfolio")
            return bool(response.json()["data"]["total_value"] == expected)

        await async_wait_until(updated, 10, f"total_value {value}")
    # Other documents are untouched by a write that did not name them.
    assert (await api.data("/v1/positions")) == brain_state.POSITIONS


async def test_head_is_served_like_get(api: Api, store: Store) -> None:
    await brain_state.publish_state(store)
    await wait_for_status(lambda: api.get("/v1/portfolio"), 200, "the portfolio")
    response = await api.client.head("/v1/portfolio")
    assert response.status_code == 200
    assert response.content == b""


async def test_the_event_stream_asked_over_plain_http_says_upgrade(api: Api) -> None:
    response = await api.get("/v1/events")
    message = assert_error(response, 426, "upgrade_required")
    assert "WebSocket" in message
    assert response.headers["upgrade"] == "websocket"


async def test_unknown_route_is_not_found_and_other_methods_not_allowed(api: Api) -> None:
    message = assert_error(await api.get("/v1/nothing-here"), 404, "not_found")
    assert "/v1/nothing-here" in message
    assert_error(await api.get("/v1/portfolio/"), 404, "not_found")
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        response = await api.client.request(method, "/v1/portfolio")
        assert_error(response, 405, "method_not_allowed")
        assert response.headers["allow"] == "GET, HEAD"


async def test_a_malformed_snapshot_is_an_internal_error_without_traceback(
    api: Api, store: Store
) -> None:
    await store.snapshots.write({SnapshotName.SYSTEM: ["not", "an", "object"]})
    response = await wait_for_status(lambda: api.get("/v1/system"), 500, "the bad system doc")
    assert assert_error(response, 500, "internal_error") == "internal server error"
