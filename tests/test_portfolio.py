"""The paper account: hand-checked arithmetic, the API's views, and invariants under random use."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brain.models import Fill
from brain.portfolio import Portfolio, Position
from shared import jsonutil

T0 = datetime(2024, 7, 22, 0, 0, tzinfo=UTC)


def buy(
    portfolio: Portfolio,
    symbol: str,
    qty: float,
    price: float,
    fee: float,
    *,
    stop: float | None = None,
    target: float | None = None,
    at: datetime = T0,
    version: str = "v1",
) -> Fill:
    return portfolio.apply_buy(
        symbol,
        qty,
        price,
        fee,
        stop_loss=stop,
        take_profit=target,
        at=at,
        strategy_version=version,
        reason="signal",
    )


def test_a_buy_takes_its_value_and_fee_from_cash_into_the_positions_cost() -> None:
    portfolio = Portfolio(1000.0)
    fill = buy(portfolio, "BTC/USDT", 0.01, 50_000.0, 0.5, stop=49_000.0, target=52_000.0)
    assert fill == Fill("BTC/USDT", "BUY", 0.01, 50_000.0, 0.5, None, None, "v1", T0, "signal")
    assert portfolio.cash == pytest.approx(499.5)
    assert portfolio.fees_paid == 0.5
    assert portfolio.positions["BTC/USDT"] == Position(
        "BTC/USDT", 0.01, 50_000.0, 500.5, 49_000.0, 52_000.0, T0, "v1"
    )


def test_an_add_averages_the_entry_price_and_takes_the_newest_levels() -> None:
    portfolio = Portfolio(1000.0)
    buy(portfolio, "BTC/USDT", 0.01, 50_000.0, 0.5, stop=49_000.0, target=52_000.0)
    later = T0 + timedelta(hours=1)
    buy(portfolio, "BTC/USDT", 0.01, 40_000.0, 0.4, stop=39_000.0, target=41_000.0, at=later,
        version="v2")  # fmt: skip
    position = portfolio.positions["BTC/USDT"]
    assert position.qty == pytest.approx(0.02)
    assert position.entry_price == pytest.approx(45_000.0)
    assert position.cost == pytest.approx(900.9)
    assert (position.stop_loss, position.take_profit) == (39_000.0, 41_000.0)
    assert position.opened_at == T0  # the first entry
    assert position.strategy_version == "v2"
    assert portfolio.cash == pytest.approx(99.1)


def test_an_exit_with_profit_counts_both_fees_once() -> None:
    portfolio = Portfolio(1000.0)
    buy(portfolio, "BTC/USDT", 0.01, 50_000.0, 0.5)
    buy(portfolio, "BTC/USDT", 0.01, 40_000.0, 0.4)
    later = T0 + timedelta(days=1)
    fill = portfolio.apply_exit("BTC/USDT", 50_000.0, 1.0, action="SELL", at=later, reason="x")
    # proceeds 0.02 * 50000 - 1 = 999; cost 900.9; pnl 98.1
    assert fill.action == "SELL"
    assert fill.qty == pytest.approx(0.02)
    assert fill.pnl == pytest.approx(98.1)
    assert fill.pnl_pct == pytest.approx(98.1 / 900.9 * 100)
    assert fill.executed_at == later
    assert fill.reason == "x"
    assert portfolio.positions == {}
    assert portfolio.cash == pytest.approx(1098.1)
    assert portfolio.realized_pnl == pytest.approx(98.1)
    assert portfolio.fees_paid == pytest.approx(1.9)
    assert portfolio.cash == pytest.approx(portfolio.starting_cash + portfolio.realized_pnl)


def test_an_exit_with_a_loss() -> None:
    portfolio = Portfolio(200.0)
    buy(portfolio, "ETH/USDT", 1.0, 100.0, 0.1)
    fill = portfolio.apply_exit("ETH/USDT", 90.0, 0.09, action="CLOSE", at=T0, reason="stop_loss")
    # proceeds 89.91, cost 100.1
    assert fill.pnl == pytest.approx(-10.19)
    assert fill.pnl_pct == pytest.approx(-10.19 / 100.1 * 100)
    assert fill.strategy_version == "v1"
    assert portfolio.cash == pytest.approx(189.81)
    assert portfolio.fees_paid == pytest.approx(0.19)


def test_refusals_leave_the_account_untouched() -> None:
    portfolio = Portfolio(100.0)
    with pytest.raises(ValueError, match="cash"):
        buy(portfolio, "ETH/USDT", 1.0, 100.0, 0.1)  # 100.1 > 100
    with pytest.raises(ValueError, match="not holding"):
        portfolio.apply_exit("ETH/USDT", 100.0, 0.0, action="SELL", at=T0, reason="signal")
    for qty, price, fee in [(0.0, 1.0, 0.0), (1.0, 0.0, 0.0), (1.0, 1.0, -0.1), (math.nan, 1, 0)]:
        with pytest.raises(ValueError, match="must be"):
            buy(portfolio, "ETH/USDT", qty, price, fee)
    buy(portfolio, "ETH/USDT", 1.0, 50.0, 0.0)
    with pytest.raises(ValueError, match="SELL or CLOSE"):
        portfolio.apply_exit("ETH/USDT", 50.0, 0.0, action="BUY", at=T0, reason="signal")
    with pytest.raises(ValueError, match="fee"):
        portfolio.apply_exit("ETH/USDT", 50.0, 51.0, action="SELL", at=T0, reason="signal")
    assert portfolio.cash == 50.0
    assert portfolio.positions["ETH/USDT"].qty == 1.0


def test_value_and_unrealized_pnl_default_to_the_entry_price() -> None:
    portfolio = Portfolio(1000.0)
    buy(portfolio, "ETH/USDT", 2.0, 100.0, 0.2)
    buy(portfolio, "SOL/USDT", 10.0, 10.0, 0.1)
    marks = {"ETH/USDT": 110.0}
    assert portfolio.value(marks) == pytest.approx(699.7 + 220.0 + 100.0)
    # Unrealized pnl includes the entry fees already paid: -0.1 on SOL at its entry price.
    assert portfolio.unrealized_pnl(marks) == pytest.approx(220.0 - 200.2 + 100.0 - 100.1)
    assert portfolio.value(marks) == pytest.approx(
        portfolio.starting_cash + portfolio.realized_pnl + portfolio.unrealized_pnl(marks)
    )
    assert portfolio.exposure("ETH/USDT", marks) == pytest.approx(220.0)
    assert portfolio.exposure("SOL/USDT", marks) == pytest.approx(100.0)
    assert portfolio.exposure("BTC/USDT", marks) == 0.0


def test_portfolio_view_has_the_plans_shape_in_percent() -> None:
    portfolio = Portfolio(1000.0)
    buy(portfolio, "ETH/USDT", 1.0, 100.0, 0.0)
    view = portfolio.portfolio_view({"ETH/USDT": 120.0})
    assert view == {
        "total_value": 1020.0,
        "cash": 900.0,
        "unrealized_pnl": 20.0,
        "position_count": 1,
        "allocation": {"cash_pct": 88.2353, "positions_pct": 11.7647},
        "realized_pnl": 0.0,
        "starting_cash": 1000.0,
    }
    jsonutil.dumps(view)


def test_an_empty_portfolio_is_all_cash() -> None:
    view = Portfolio(200.0).portfolio_view({})
    assert view["allocation"] == {"cash_pct": 100.0, "positions_pct": 0.0}
    assert view["total_value"] == 200.0
    assert Portfolio(0.0).portfolio_view({})["allocation"]["cash_pct"] == 100.0


def test_positions_view_has_the_plans_fields() -> None:
    portfolio = Portfolio(1000.0)
    buy(portfolio, "SOL/USDT", 10.0, 10.0, 0.0, at=T0 + timedelta(minutes=5))
    buy(portfolio, "BTC/USDT", 0.001, 45_000.0, 0.0, stop=44_100.0, target=47_700.0)
    views = portfolio.positions_view({"BTC/USDT": 44_800.0})
    assert views[0] == {
        "symbol": "BTC/USDT",
        "qty": 0.001,
        "entry_price": 45_000.0,
        "current_price": 44_800.0,
        "unrealized_pnl": -0.2,
        "unrealized_pnl_pct": -0.4444,
        "stop_loss": 44_100.0,
        "take_profit": 47_700.0,
        "opened_at": "2024-07-22T00:00:00Z",
    }
    assert views[1]["symbol"] == "SOL/USDT"
    assert views[1]["current_price"] == 10.0  # no mark: the entry price
    assert views[1]["stop_loss"] is None
    assert views[1]["opened_at"] == "2024-07-22T00:05:00Z"
    jsonutil.dumps(views)


def test_views_round_for_display_only() -> None:
    portfolio = Portfolio(100.0)
    buy(portfolio, "X/USDT", 3.0, 1 / 3, 1e-12)
    assert portfolio.portfolio_view({})["cash"] == 99.0
    assert portfolio.cash != 99.0
    assert portfolio.positions_view({})[0]["entry_price"] == 0.333333333333


# --- properties -------------------------------------------------------------------------------

SYMBOLS = ("A/USDT", "B/USDT", "C/USDT")
prices = st.floats(min_value=1e-4, max_value=1e5, allow_nan=False, allow_infinity=False)
fee_rates = st.floats(min_value=0.0, max_value=0.1)
symbols = st.sampled_from(SYMBOLS)
# Subnormal quantities (1e-320) lose the precision any average needs: keep amounts real.
shares = st.one_of(st.just(0.0), st.floats(1e-9, 1.0))
operations = st.lists(
    st.one_of(
        st.tuples(st.just("buy"), symbols, shares, prices, fee_rates, prices),
        st.tuples(st.just("exit"), symbols, prices, fee_rates),
        st.tuples(st.just("mark"), st.dictionaries(symbols, prices)),
    ),
    max_size=40,
)


def assert_invariants(portfolio: Portfolio, fills: list[Fill], scale: float) -> None:
    tolerance = 1e-9 * scale
    costs = sum(p.cost for p in portfolio.positions.values())
    exits = [f.pnl for f in fills if f.pnl is not None]
    assert portfolio.cash >= 0
    assert math.isclose(
        portfolio.cash + costs,
        portfolio.starting_cash + portfolio.realized_pnl,
        rel_tol=1e-9,
        abs_tol=tolerance,
    )
    assert math.isclose(portfolio.realized_pnl, math.fsum(exits), rel_tol=1e-9, abs_tol=tolerance)
    assert math.isclose(portfolio.fees_paid, math.fsum(f.fee for f in fills), abs_tol=tolerance)
    at_entry = portfolio.cash + sum(p.qty * p.entry_price for p in portfolio.positions.values())
    assert math.isclose(portfolio.value({}), at_entry, rel_tol=1e-9, abs_tol=tolerance)
    restored = Portfolio.from_dict(jsonutil.loads(jsonutil.dumps(portfolio.to_dict())))
    assert restored.to_dict() == portfolio.to_dict()
    assert restored.positions == portfolio.positions
    assert (restored.cash, restored.realized_pnl, restored.fees_paid) == (
        portfolio.cash,
        portfolio.realized_pnl,
        portfolio.fees_paid,
    )


@settings(deadline=None, max_examples=300)
@given(starting_cash=st.one_of(st.just(0.0), st.floats(1e-3, 1e7)), ops=operations)
def test_invariants_hold_after_every_step(
    starting_cash: float, ops: list[tuple[object, ...]]
) -> None:
    portfolio = Portfolio(starting_cash)
    fills: list[Fill] = []
    entry_fees: dict[str, float] = {}
    scale = max(1.0, starting_cash)  # grows with the money that has moved
    now = T0
    for op in ops:
        now += timedelta(minutes=5)
        before = portfolio.to_dict()
        match op:
            case ("buy", str(symbol), float(share), float(price), float(rate), float(stop)):
                qty = portfolio.cash * share / (price * (1 + rate))
                fee = qty * price * rate
                if qty <= 0 or qty * price + fee > portfolio.cash:
                    with pytest.raises(ValueError, match=r"must be|cash"):
                        buy(portfolio, symbol, qty, price, fee)
                    assert portfolio.to_dict() == before
                    continue
                held = portfolio.positions.get(symbol)
                fills.append(buy(portfolio, symbol, qty, price, fee, stop=stop, at=now))
                entry_fees[symbol] = entry_fees.get(symbol, 0.0) + fee
                position = portfolio.positions[symbol]
                low = min(price, held.entry_price) if held else price
                high = max(price, held.entry_price) if held else price
                assert low * (1 - 1e-12) <= position.entry_price <= high * (1 + 1e-12)
                assert math.isclose(
                    position.cost,
                    position.qty * position.entry_price + entry_fees[symbol],
                    rel_tol=1e-9,
                )
                assert position.stop_loss == stop
                scale += qty * price + fee
            case ("exit", str(symbol), float(price), float(rate)):
                if symbol not in portfolio.positions:
                    with pytest.raises(ValueError, match="not holding"):
                        portfolio.apply_exit(symbol, price, 0.0, action="SELL", at=now, reason="")
                    assert portfolio.to_dict() == before
                    continue
                position = portfolio.positions[symbol]
                fee = position.qty * price * rate
                fill = portfolio.apply_exit(symbol, price, fee, action="CLOSE", at=now, reason="")
                fills.append(fill)
                del entry_fees[symbol]
                assert fill.pnl is not None
                assert fill.pnl_pct is not None
                assert math.isclose(fill.pnl, position.qty * price - fee - position.cost,
                                    rel_tol=1e-9, abs_tol=1e-9 * scale)  # fmt: skip
                scale += position.qty * price
            case ("mark", dict(marks)):
                value = portfolio.value(marks)
                assert math.isclose(
                    value,
                    portfolio.starting_cash + portfolio.realized_pnl
                    + portfolio.unrealized_pnl(marks),
                    rel_tol=1e-9,
                    abs_tol=1e-9 * (scale + value),
                )  # fmt: skip
                view = portfolio.portfolio_view(marks)
                assert view["position_count"] == len(portfolio.positions)
                allocation = view["allocation"]
                assert allocation["cash_pct"] + allocation["positions_pct"] == pytest.approx(100)
                assert len(portfolio.positions_view(marks)) == len(portfolio.positions)
                jsonutil.dumps(view)
                scale += value
        assert_invariants(portfolio, fills, scale)
