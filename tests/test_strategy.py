"""The strategy's rules, confidence, parameters and version identity; and a sanity check that
the shipped defaults trade a sensible amount on the real data."""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import re
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, get_type_hints

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brain.indicators import IndicatorState
from brain.models import Indicators
from brain.strategy import Strategy, StrategyParams, code_hash, version_id
from shared.settings import Between, Settings, StrategySettings
from tests.test_indicators import SYMBOLS, load_candles


@pytest.fixture
def params(base_settings: Settings) -> StrategyParams:
    return StrategyParams.from_settings(base_settings.strategy)


@pytest.fixture
def strategy(params: StrategyParams) -> Strategy:
    """The shipped parameters, but with the volume threshold the examples below are built on."""
    return Strategy(dataclasses.replace(params, volume_ratio_min=1.0), "v20240101_000000")


def entry(**changes: Any) -> Indicators:
    """Indicators that meet every BUY condition of the defaults (EMA spread 0.2 %)."""
    values: dict[str, Any] = {
        "price": 101.0,
        "ema_fast": 100.2,
        "ema_slow": 100.0,
        "rsi": 57.5,
        "volume_ratio": 1.5,
        "atr": 0.5,
        "regime": "trending",
        "trend": "bullish",
    }
    return Indicators(**{**values, **changes})


# --- BUY and SELL rules -------------------------------------------------------------------


def test_buy_when_every_entry_condition_holds(strategy: Strategy) -> None:
    signal = strategy.evaluate("BTC/USDT", entry(), holding=False)
    assert signal is not None
    assert (signal.symbol, signal.action) == ("BTC/USDT", "BUY")
    assert 0.0 <= signal.confidence <= 1.0
    assert "RSI 57.5" in signal.reason


def test_buy_in_a_ranging_market_too(strategy: Strategy) -> None:
    assert strategy.evaluate("X", entry(regime="ranging"), holding=False) is not None


@pytest.mark.parametrize(
    "changes",
    [
        {"trend": "neutral"},
        {"trend": "bearish"},
        {"regime": "volatile"},
        {"rsi": 44.99},
        {"rsi": 70.01},
        {"volume_ratio": 0.99},
    ],
)
def test_no_buy_when_one_condition_fails(strategy: Strategy, changes: dict[str, Any]) -> None:
    assert strategy.evaluate("X", entry(**changes), holding=False) is None


@pytest.mark.parametrize("changes", [{"rsi": 45.0}, {"rsi": 70.0}, {"volume_ratio": 1.0}])
def test_entry_bounds_are_inclusive(strategy: Strategy, changes: dict[str, Any]) -> None:
    signal = strategy.evaluate("X", entry(**changes), holding=False)
    assert signal is not None
    assert signal.action == "BUY"


def test_no_buy_while_holding(strategy: Strategy) -> None:
    assert strategy.evaluate("X", entry(), holding=True) is None


def test_sell_when_rsi_reaches_the_exit(strategy: Strategy) -> None:
    signal = strategy.evaluate("X", entry(rsi=78.0), holding=True)
    assert signal is not None
    assert signal.action == "SELL"
    assert signal.reason == "RSI 78.0 >= 78"
    assert strategy.evaluate("X", entry(rsi=77.99), holding=True) is None


def test_sell_when_the_trend_turns_bearish(strategy: Strategy) -> None:
    ind = entry(ema_fast=99.5, price=99.0, trend="bearish", rsi=40.0)
    signal = strategy.evaluate("X", ind, holding=True)
    assert signal is not None
    assert (signal.action, signal.reason) == ("SELL", "trend turned bearish")
    assert strategy.evaluate("X", entry(trend="neutral", rsi=40.0), holding=True) is None


def test_no_sell_when_flat(strategy: Strategy) -> None:
    assert strategy.evaluate("X", entry(rsi=90.0, trend="bearish"), holding=False) is None


def test_sell_confidence_grows_with_the_exit_strength(strategy: Strategy) -> None:
    at_exit = strategy.sell_confidence(entry(rsi=78.0))
    assert at_exit == 0.5
    assert strategy.sell_confidence(entry(rsi=89.0)) == pytest.approx(0.75)
    assert strategy.sell_confidence(entry(rsi=100.0)) == 1.0


def test_stop_loss_and_take_profit_are_atr_multiples(strategy: Strategy) -> None:
    assert strategy.stop_loss(100.0, 1.5) == pytest.approx(97.0)  # 2 ATR below
    assert strategy.take_profit(100.0, 1.5) == pytest.approx(104.5)  # 3 ATR above


def test_low_confidence_signals_are_still_returned(strategy: Strategy) -> None:
    weak = entry(ema_fast=100.01, rsi=45.0, volume_ratio=1.0)
    signal = strategy.evaluate("X", weak, holding=False)
    assert signal is not None
    assert signal.confidence < strategy.params.min_confidence


# --- confidence ----------------------------------------------------------------------------

indicators = st.builds(
    Indicators,
    price=st.floats(1e-6, 1e6),
    ema_fast=st.floats(1e-6, 1e6),
    ema_slow=st.floats(1e-6, 1e6),
    rsi=st.floats(0.0, 100.0),
    volume_ratio=st.floats(0.0, 1e3),
    atr=st.floats(0.0, 1e4),
    regime=st.sampled_from(["trending", "ranging", "volatile"]),
    trend=st.sampled_from(["bullish", "bearish", "neutral"]),
)


@settings(deadline=None)
@given(ind=indicators, holding=st.booleans())
def test_confidence_is_always_within_zero_and_one(ind: Indicators, holding: bool) -> None:
    strategy = Strategy(StrategyParams.from_dict(DEFAULTS), "v")
    assert 0.0 <= strategy.buy_confidence(ind) <= 1.0
    assert 0.0 <= strategy.sell_confidence(ind) <= 1.0
    signal = strategy.evaluate("X", ind, holding)
    if signal is not None:
        assert 0.0 <= signal.confidence <= 1.0


@settings(deadline=None)
@given(
    spreads=st.tuples(st.floats(1e-9, 5.0), st.floats(1e-9, 5.0)).map(sorted),
    rsi=st.floats(45.0, 70.0),
    volume_ratio=st.floats(1.5, 10.0),
    threshold=st.floats(0.0, 2.0),
)
def test_buy_confidence_never_falls_as_the_ema_spread_widens(
    spreads: list[float], rsi: float, volume_ratio: float, threshold: float
) -> None:
    strategy = Strategy(
        StrategyParams.from_dict({**DEFAULTS, "trend_threshold_pct": threshold}), "v"
    )
    confidences = []
    for spread_pct in spreads:
        ind = entry(
            price=100.0,
            ema_slow=99.0,
            ema_fast=99.0 + spread_pct,
            rsi=rsi,
            volume_ratio=volume_ratio,
        )
        signal = strategy.evaluate("X", ind, holding=False)
        assert signal is not None
        confidences.append(signal.confidence)
    assert confidences[0] <= confidences[1]


def test_buy_confidence_reaches_one_when_everything_is_strong(strategy: Strategy) -> None:
    assert strategy.buy_confidence(entry(ema_fast=100.4, volume_ratio=2.0)) == pytest.approx(1.0)


# --- parameters ----------------------------------------------------------------------------

DEFAULTS: dict[str, Any] = {
    "ema_fast": 12,
    "ema_slow": 26,
    "rsi_period": 14,
    "atr_period": 14,
    "volume_period": 20,
    "rsi_entry_min": 45.0,
    "rsi_entry_max": 70.0,
    "rsi_exit": 78.0,
    "volume_ratio_min": 1.5,
    "trend_threshold_pct": 0.15,
    "volatile_atr_pct": 1.2,
    "stop_loss_atr": 2.0,
    "take_profit_atr": 3.0,
    "min_confidence": 0.5,
}


def test_params_have_the_settings_fields_and_their_bounds() -> None:
    names = [f.name for f in dataclasses.fields(StrategyParams)]
    assert names == [f.name for f in dataclasses.fields(StrategySettings)]
    assert list(StrategyParams.PARAM_BOUNDS) == names
    hints = get_type_hints(StrategySettings, include_extras=True)
    for name, (low, high) in StrategyParams.PARAM_BOUNDS.items():
        (between,) = [m for m in hints[name].__metadata__ if isinstance(m, Between)]
        assert between.low is not None
        assert between.high is not None
        assert (between.low, between.high) == (low, high), name


def test_from_settings_reads_the_shipped_defaults(params: StrategyParams) -> None:
    assert params.to_dict() == DEFAULTS


def test_to_dict_from_dict_round_trip_through_json(params: StrategyParams) -> None:
    stored = json.dumps(params.to_dict())
    assert StrategyParams.from_dict(json.loads(stored)) == params


def test_whole_floats_and_ints_are_normalised() -> None:
    loose = StrategyParams.from_dict({**DEFAULTS, "ema_fast": 12.0, "rsi_exit": 78})
    assert loose == StrategyParams.from_dict(DEFAULTS)
    assert isinstance(loose.ema_fast, int)
    assert isinstance(loose.rsi_exit, float)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"ema_fast": 26}, "ema_fast"),
        ({"ema_slow": 1000}, "ema_slow"),
        ({"rsi_entry_min": 70.0}, "rsi_entry_min"),
        ({"rsi_exit": 65.0}, "rsi_exit"),
        ({"rsi_exit": 100.5}, "rsi_exit"),
        ({"min_confidence": 1.5}, "min_confidence"),
        ({"volatile_atr_pct": math.nan}, "volatile_atr_pct"),
        ({"stop_loss_atr": 0.0}, "stop_loss_atr"),
        ({"rsi_period": 14.5}, "rsi_period"),
        ({"atr_period": True}, "atr_period"),
        ({"volume_ratio_min": "1.0"}, "volume_ratio_min"),
    ],
)
def test_invalid_params_name_the_parameter(changes: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        StrategyParams.from_dict({**DEFAULTS, **changes})


def test_from_dict_names_missing_and_unknown_keys() -> None:
    with pytest.raises(ValueError, match=r"missing.*rsi_exit"):
        StrategyParams.from_dict({k: v for k, v in DEFAULTS.items() if k != "rsi_exit"})
    with pytest.raises(ValueError, match=r"unknown.*macd_fast"):
        StrategyParams.from_dict({**DEFAULTS, "macd_fast": 12})


# --- versions ------------------------------------------------------------------------------


def test_code_hash_is_stable_for_equal_params(params: StrategyParams) -> None:
    again = StrategyParams.from_dict(json.loads(json.dumps(params.to_dict())))
    assert re.fullmatch(r"[0-9a-f]{8}", code_hash(params))
    assert code_hash(params) == code_hash(again)


@pytest.mark.parametrize("name", list(DEFAULTS))
def test_code_hash_changes_with_any_parameter(params: StrategyParams, name: str) -> None:
    value = DEFAULTS[name]
    nudged = value + 1 if isinstance(value, int) else value + 0.01
    if name == "ema_slow":
        nudged = 27
    changed = StrategyParams.from_dict({**DEFAULTS, name: nudged})
    assert code_hash(changed) != code_hash(params)


def test_code_hash_changes_with_the_logic(
    params: StrategyParams, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = code_hash(params)
    real = inspect.getsource

    def edited(obj: Any) -> str:
        source = real(obj)
        return source + "# tweak\n" if obj.__name__ == "brain.indicators" else source

    monkeypatch.setattr(inspect, "getsource", edited)
    assert code_hash(params) != before


def test_version_id_is_utc_timestamp() -> None:
    assert version_id(datetime(2024, 7, 22, 0, 5, 9, tzinfo=UTC)) == "v20240722_000509"
    cest = timezone(timedelta(hours=2))
    assert version_id(datetime(2024, 7, 22, 2, 5, 9, 999, tzinfo=cest)) == "v20240722_000509"


# --- the defaults on the real data ---------------------------------------------------------


def test_defaults_signal_a_sensible_number_of_trades_on_real_data(strategy: Strategy) -> None:
    """Three weeks, six symbols, 5-minute candles. Holding starts with a BUY the engine would
    take (confidence >= min_confidence) and ends with the next SELL; no stops, no risk caps."""
    counts: Counter[str] = Counter()
    for symbol in SYMBOLS:
        state, holding = IndicatorState(strategy.params), False
        for candle in load_candles(symbol):
            ind = state.update(candle)
            signal = None if ind is None else strategy.evaluate(symbol, ind, holding)
            if signal is None:
                continue
            counts[signal.action] += 1
            if signal.action == "SELL":
                holding = False
            elif signal.confidence >= strategy.params.min_confidence:
                counts["entries"] += 1
                counts[f"entries {symbol}"] += 1
                holding = True
    print(dict(counts))
    assert 30 <= counts["entries"] <= 1000
    assert all(counts[f"entries {symbol}"] >= 5 for symbol in SYMBOLS)
    assert counts["BUY"] < 2000  # including the low-confidence ones the engine rejects
    assert counts["SELL"] <= counts["entries"]
