"""The paper broker: slippage and fees, refusals, stop loss and take profit order, cash >= 0."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brain.broker import PaperBroker
from brain.models import Candle, Fill
from brain.portfolio import Portfolio
from shared.settings import PaperSettings

T0 = datetime(2024, 7, 22, 0, 0, tzinfo=UTC)
SYMBOL = "ETH/USDT"


def make_broker(
    cash: float = 1000.0, fee_rate: float = 0.001, slippage: float = 0.0005
) -> PaperBroker:
    return PaperBroker(Portfolio(cash), PaperSettings(cash, fee_rate, slippage))


def open_position(
    broker: PaperBroker,
    notional: float = 100.0,
    price: float = 100.0,
    *,
    stop: float | None = 90.0,
    target: float | None = 120.0,
    symbol: str = SYMBOL,
) -> Fill | None:
    return broker.buy(
        symbol,
        notional,
        price,
        stop_loss=stop,
        take_profit=target,
        at=T0,
        strategy_version="v1",
    )


def candle(open_: float, high: float, low: float, close: float, symbol: str = SYMBOL) -> Candle:
    return Candle(symbol, T0, T0 + timedelta(minutes=5), open_, high, low, close, 1.0)


def test_a_buy_pays_slippage_and_a_fee_within_the_notional() -> None:
    broker = make_broker()
    fill = open_position(broker)
    assert fill is not None
    assert fill.action == "BUY"
    assert fill.price == pytest.approx(100.05)
    assert fill.qty == pytest.approx(100.0 / (100.05 * 1.001))
    assert fill.fee == pytest.approx(fill.qty * 100.05 * 0.001)
    assert fill.qty * fill.price + fill.fee <= 100.0
    assert broker.portfolio.cash == pytest.approx(900.0)
    assert fill.reason == "signal"
    assert fill.executed_at == T0


def test_an_exit_sells_everything_below_the_price_and_pays_its_fee() -> None:
    broker = make_broker()
    bought = open_position(broker)
    assert bought is not None
    fill = broker.exit(SYMBOL, 110.0, "SELL", T0 + timedelta(hours=1))
    assert fill is not None
    assert fill.price == pytest.approx(109.945)
    assert fill.qty == bought.qty
    assert fill.fee == pytest.approx(bought.qty * 109.945 * 0.001)
    assert fill.pnl == pytest.approx(bought.qty * 109.945 * 0.999 - 100.0)
    assert broker.portfolio.positions == {}
    assert broker.portfolio.cash == pytest.approx(900.0 + bought.qty * 109.945 * 0.999)


def test_refusals() -> None:
    broker = make_broker(cash=100.0)
    assert open_position(broker, notional=100.5) is None  # more than the cash
    assert open_position(broker, notional=0.0) is None
    assert open_position(broker, notional=-5.0) is None
    assert open_position(broker, price=0.0) is None
    assert broker.exit(SYMBOL, 100.0, "SELL", T0) is None  # not holding
    assert broker.portfolio.cash == 100.0
    assert broker.portfolio.fees_paid == 0.0


def test_all_in_spends_the_cash_exactly_and_never_more() -> None:
    broker = make_broker(cash=123.456789, fee_rate=0.00075, slippage=0.0003)
    fill = open_position(broker, notional=123.456789, price=0.123456789)
    assert fill is not None
    assert 0.0 <= broker.portfolio.cash < 1e-9


@pytest.mark.parametrize(
    ("bar", "price", "reason"),
    [
        pytest.param((85.0, 88.0, 80.0, 86.0), 85.0 * 0.9995, "stop_loss", id="gap down: the open"),
        pytest.param((95.0, 100.0, 89.0, 92.0), 90.0 * 0.9995, "stop_loss", id="stop touched"),
        pytest.param((100.0, 125.0, 89.0, 110.0), 90.0 * 0.9995, "stop_loss", id="both: the stop"),
        pytest.param((100.0, 121.0, 95.0, 118.0), 120.0, "take_profit", id="take profit"),
        pytest.param((125.0, 130.0, 122.0, 128.0), 125.0, "take_profit", id="gap up: the open"),
        pytest.param((100.0, 120.0, 90.0, 100.0), 90.0 * 0.9995, "stop_loss", id="both exactly"),
    ],
)
def test_stops_close_conservatively_within_a_candle(
    bar: tuple[float, float, float, float], price: float, reason: str
) -> None:
    broker = make_broker()
    bought = open_position(broker)
    assert bought is not None
    fill = broker.check_stops(candle(*bar))
    assert fill is not None
    assert (fill.action, fill.reason) == ("CLOSE", reason)
    assert fill.price == pytest.approx(price)
    assert fill.qty == bought.qty
    assert fill.fee == pytest.approx(bought.qty * price * 0.001)
    assert fill.executed_at == T0 + timedelta(minutes=5)  # the candle's close
    assert broker.portfolio.positions == {}


def test_a_candle_between_the_levels_changes_nothing() -> None:
    broker = make_broker()
    open_position(broker)
    assert broker.check_stops(candle(100.0, 119.9, 90.1, 105.0)) is None
    assert SYMBOL in broker.portfolio.positions
    assert broker.check_stops(candle(1.0, 1000.0, 0.5, 5.0, symbol="BTC/USDT")) is None  # flat


def test_missing_levels_never_trigger() -> None:
    broker = make_broker()
    open_position(broker, stop=None, target=None)
    assert broker.check_stops(candle(100.0, 1000.0, 0.01, 100.0)) is None
    assert SYMBOL in broker.portfolio.positions


# --- property: cash never goes negative, a buy never spends more than its notional --------------

prices = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False, allow_infinity=False)
operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("buy"), st.floats(0.0, 1.2), prices, st.floats(0.5, 1.0), st.floats(1.0, 2.0)
        ),
        st.tuples(st.just("exit"), prices),
        st.tuples(st.just("bar"), prices, st.floats(0.0, 0.5), st.floats(0.0, 0.5)),
    ),
    max_size=30,
)


@settings(deadline=None, max_examples=300)
@given(
    cash=st.floats(1.0, 1e9),
    fee_rate=st.floats(0.0, 0.1),
    slippage=st.floats(0.0, 0.1),
    ops=operations,
)
def test_cash_never_goes_negative(
    cash: float, fee_rate: float, slippage: float, ops: list[tuple[object, ...]]
) -> None:
    broker = make_broker(cash, fee_rate, slippage)
    portfolio = broker.portfolio
    fills: list[Fill] = []
    for op in ops:
        before = portfolio.cash
        match op:
            case ("buy", float(share), float(price), float(stop), float(target)):
                notional = before * share
                fill = open_position(
                    broker, notional, price, stop=price * stop, target=price * target
                )
                if notional > before * (1 + 1e-9) or notional <= 0:
                    assert fill is None
                if fill is not None:
                    fills.append(fill)
                    assert (
                        before - portfolio.cash <= notional + 1e-12 * before
                    )  # float: cash - spend
                    assert fill.qty * fill.price + fill.fee <= notional
                    assert fill.price == pytest.approx(price * (1 + slippage))
            case ("exit", float(price)):
                if fill := broker.exit(SYMBOL, price, "SELL", T0):
                    fills.append(fill)
            case ("bar", float(open_), float(up), float(down)):
                bar = candle(open_, open_ * (1 + up), open_ * (1 - down), open_)
                if fill := broker.check_stops(bar):
                    fills.append(fill)
                    assert fill.reason in ("stop_loss", "take_profit")
        assert portfolio.cash >= 0
        costs = sum(p.cost for p in portfolio.positions.values())
        realized = math.fsum(f.pnl for f in fills if f.pnl is not None)
        assert math.isclose(portfolio.cash + costs, cash + realized, rel_tol=1e-9, abs_tol=1e-6)
        assert math.isclose(portfolio.fees_paid, math.fsum(f.fee for f in fills), abs_tol=1e-6)
