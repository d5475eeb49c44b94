"""Truth benchmarks: hand-checked values, edge cases, JSON round trip, incremental == batch."""

from __future__ import annotations

import itertools
import json
import math
import statistics
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brain.ledger import DailyRecord
from brain.models import Fill
from brain.truth import TruthBenchmarks

T0 = datetime(2026, 2, 1, tzinfo=UTC)
METRICS = {
    "total_trades", "win_rate", "profit_factor", "avg_win", "avg_loss", "expectancy",
    "total_pnl", "total_fees", "return_pct", "max_drawdown", "sharpe_ratio", "sortino_ratio",
    "calmar_ratio", "largest_win", "largest_loss", "max_consecutive_losses", "avg_hold_hours",
}  # fmt: skip


def entry(fee: float = 1.0) -> Fill:
    return Fill("BTC/USDT", "BUY", 1.0, 100.0, fee, None, None, "v1", T0, "signal")


def exit_fill(pnl: float, fee: float, hours: float) -> tuple[Fill, datetime]:
    """A closing fill and the opened_at of its position, ``hours`` before it."""
    closed = T0 + timedelta(hours=hours)
    return Fill("BTC/USDT", "SELL", 1.0, 100.0, fee, pnl, None, "v1", closed, "signal"), T0


def day(n: int, value: float, pct: float) -> DailyRecord:
    return DailyRecord(date(2026, 2, 1) + timedelta(days=n), value, 0.0, pct, 0, 0, 0, 0.0)


# (pnl, exit fee, hold hours); each trade also had an entry fill with fee 1.0.
TRADES = [
    (30.0, 1.0, 2.0),
    (-10.0, 1.0, 4.0),
    (-20.0, 0.5, 1.0),
    (50.0, 1.5, 8.0),
    (-5.0, 0.5, 5.0),
]
# (portfolio value, daily pnl %) from a starting value of 1000:
# 1000 * 1.02 = 1020; 1020 * 0.95 = 969; 969 * 1.05 = 1017.45; 1017.45 * 1.01 = 1027.6245
DAYS = [(1020.0, 2.0), (969.0, -5.0), (1017.45, 5.0), (1027.6245, 1.0)]


def fed(trades: Any = TRADES, days: Any = DAYS, start: float = 1000.0) -> TruthBenchmarks:
    truth = TruthBenchmarks(start)
    for pnl, fee, hours in trades:
        truth.record_fill(entry())
        truth.record_exit(*exit_fill(pnl, fee, hours))
    for n, (value, pct) in enumerate(days):
        truth.record_day(day(n, value, pct))
    return truth


def test_every_metric_on_a_fixed_trade_list() -> None:
    assert fed().view() == {
        "total_trades": 5,
        "win_rate": 0.4,  # 2 wins (30, 50) of 5
        "profit_factor": 2.285714,  # gross profit 80 / |gross loss -35| = 2.2857142857
        "avg_win": 40.0,  # 80 / 2
        "avg_loss": -11.66666667,  # -35 / 3
        "expectancy": 9.0,  # (30 - 10 - 20 + 50 - 5) / 5 = 45 / 5
        "total_pnl": 45.0,
        "total_fees": 9.5,  # entries 5 * 1.0 + exits 1 + 1 + 0.5 + 1.5 + 0.5
        "return_pct": 2.76245,  # (1027.6245 / 1000 - 1) * 100
        "max_drawdown": 0.05,  # peak 1020 to 969: 51 / 1020
        # returns r = [0.02, -0.05, 0.05, 0.01]; mean 0.03 / 4 = 0.0075; deviations 0.0125,
        # -0.0575, 0.0425, 0.0025, squares sum to 0.005275; / 3 = 0.00175833; stdev 0.04193249.
        # sqrt(365) = 19.10497317: sharpe = 0.0075 / 0.04193249 * 19.10497317 = 3.4170953
        "sharpe_ratio": 3.417095,
        # downside: mean(0, 0.0025, 0, 0) = 0.000625, sqrt = 0.025: 0.0075 / 0.025 * 19.10497
        "sortino_ratio": 5.731492,
        # annualised: 1.0276245 ** (365 / 4) - 1 = 11.0196979; / 0.05
        "calmar_ratio": 220.393959,
        "largest_win": 50.0,
        "largest_loss": -20.0,
        "max_consecutive_losses": 2,  # W L L W L
        "avg_hold_hours": 4.0,  # (2 + 4 + 1 + 8 + 5) / 5
    }


def test_nothing_recorded_gives_zero_counts_and_null_ratios() -> None:
    view = TruthBenchmarks(1000.0).view()
    assert set(view) == METRICS
    assert view == {
        **dict.fromkeys(METRICS),
        "total_trades": 0,
        "total_pnl": 0.0,
        "total_fees": 0.0,
        "return_pct": 0.0,
        "max_drawdown": 0.0,
        "max_consecutive_losses": 0,
    }
    json.dumps(view, allow_nan=False)


def test_no_losses_leaves_profit_factor_and_loss_metrics_null() -> None:
    view = fed(trades=[(10.0, 0.0, 1.0), (0.0, 0.0, 1.0)], days=[]).view()  # pnl 0 is a win
    assert view["win_rate"] == 1.0
    assert view["avg_win"] == 5.0
    assert view["profit_factor"] is None
    assert view["avg_loss"] is None
    assert view["largest_loss"] is None
    assert view["max_consecutive_losses"] == 0


def test_only_losses_give_zero_profit_factor() -> None:
    view = fed(trades=[(-10.0, 0.0, 1.0), (-2.0, 0.0, 3.0)], days=[]).view()
    assert (view["win_rate"], view["profit_factor"], view["avg_win"]) == (0.0, 0.0, None)
    assert (view["avg_loss"], view["largest_loss"], view["max_consecutive_losses"]) == (-6, -10, 2)
    assert view["avg_hold_hours"] == 2.0


def test_one_day_has_no_sharpe_or_sortino() -> None:
    view = fed(trades=[], days=[(990.0, -1.0)]).view()
    assert (view["sharpe_ratio"], view["sortino_ratio"]) == (None, None)
    assert view["max_drawdown"] == 0.01
    assert view["calmar_ratio"] == round((0.99**365 - 1) / 0.01, 6)


def test_zero_drawdown_has_no_calmar() -> None:
    view = fed(trades=[], days=[(1010.0, 1.0), (1030.0, 1.980198)]).view()
    assert view["max_drawdown"] == 0.0
    assert view["calmar_ratio"] is None
    assert view["sortino_ratio"] is None  # no down day: downside deviation 0


def test_zero_stdev_has_no_sharpe() -> None:
    view = fed(trades=[], days=[(990.0, -1.0), (980.1, -1.0)]).view()
    assert view["sharpe_ratio"] is None
    assert view["sortino_ratio"] == round(-0.01 / 0.01 * math.sqrt(365), 6)


def test_overflowing_annualised_return_gives_null_calmar() -> None:
    view = fed(trades=[], days=[(500.0, -50.0), (1e12, 2e11)]).view()
    assert view["calmar_ratio"] is None
    json.dumps(view, allow_nan=False)


def test_misrouted_and_non_finite_fills_are_rejected() -> None:
    truth = TruthBenchmarks(1000.0)
    with pytest.raises(ValueError, match="record_exit"):
        truth.record_fill(exit_fill(1.0, 0.0, 1.0)[0])
    with pytest.raises(ValueError, match="closing fill"):
        truth.record_exit(entry(), T0)
    with pytest.raises(ValueError, match="finite"):
        truth.record_exit(*exit_fill(math.nan, 0.0, 1.0))
    with pytest.raises(ValueError, match="finite"):
        truth.record_day(day(0, math.inf, 1.0))
    assert truth.to_dict() == TruthBenchmarks(1000.0).to_dict()


def test_json_round_trip_is_exact_and_resumes_identically() -> None:
    truth = fed(trades=TRADES[:3], days=DAYS[:2])
    text = json.dumps(truth.to_dict(), allow_nan=False)
    restored = TruthBenchmarks.from_dict(json.loads(text))
    assert restored.to_dict() == truth.to_dict()
    assert restored.view() == truth.view()
    for pnl, fee, hours in TRADES[3:]:
        restored.record_fill(entry())
        restored.record_exit(*exit_fill(pnl, fee, hours))
    for n, (value, pct) in enumerate(DAYS[2:], start=2):
        restored.record_day(day(n, value, pct))
    assert restored.to_dict() == fed().to_dict()
    assert restored.view() == fed().view()
    json.dumps(restored.view(), allow_nan=False)


def batch(
    start: float, trades: list[tuple[float, float, float]], days: list[DailyRecord]
) -> dict[str, Any]:
    """The metrics computed from scratch, straightforwardly (not rounded)."""
    pnls = [pnl for pnl, _, _ in trades]
    wins, losses = [p for p in pnls if p >= 0], [p for p in pnls if p < 0]
    values = [start] + [d.portfolio_value for d in days]
    returns = [d.daily_pnl_pct / 100 for d in days]
    drawdown = max((max(values[: i + 1]) - v) / max(values[: i + 1]) for i, v in enumerate(values))
    sharpe = sortino = calmar = None
    if len(returns) >= 2:
        mean = statistics.mean(returns)
        stdev = statistics.stdev(returns)
        sharpe = mean / stdev * math.sqrt(365) if stdev else None
        downside = math.sqrt(statistics.mean([min(r, 0) ** 2 for r in returns]))
        sortino = mean / downside * math.sqrt(365) if downside else None
    if returns and drawdown:
        calmar = ((values[-1] / start) ** (365 / len(returns)) - 1) / drawdown
    streaks = [len(list(g)) for loss, g in itertools.groupby(pnls, key=lambda p: p < 0) if loss]
    n = len(trades)
    return {
        "total_trades": n,
        "win_rate": len(wins) / n if n else None,
        "profit_factor": sum(wins) / -sum(losses) if losses else None,
        "avg_win": statistics.mean(wins) if wins else None,
        "avg_loss": statistics.mean(losses) if losses else None,
        "expectancy": statistics.mean(pnls) if pnls else None,
        "total_pnl": sum(pnls),
        "total_fees": sum(1.0 + fee for _, fee, _ in trades),  # entry fee 1.0 + exit fee
        "return_pct": (values[-1] / start - 1) * 100,
        "max_drawdown": drawdown,
        "sharpe_ratio": sharpe,
        "sortino_ratio": sortino,
        "calmar_ratio": calmar,
        "largest_win": max(wins) if wins else None,
        "largest_loss": min(losses) if losses else None,
        "max_consecutive_losses": max(streaks, default=0),
        "avg_hold_hours": statistics.mean(h for _, _, h in trades) if trades else None,
    }


money = st.floats(-1000, 1000, allow_nan=False)
trade_lists = st.lists(st.tuples(money, st.floats(0, 10), st.floats(0, 1000)), max_size=30)


@settings(deadline=None)
@given(
    start=st.floats(100, 1e6),
    trades=trade_lists,
    returns=st.lists(st.floats(-0.5, 0.5), max_size=40),
    split=st.floats(0, 1),
)
def test_incremental_equals_batch(
    start: float, trades: list[tuple[float, float, float]], returns: list[float], split: float
) -> None:
    truth = TruthBenchmarks(start)
    value = start
    days = []
    for n, r in enumerate(returns):
        value *= 1 + r
        days.append(day(n, value, r * 100))
    events: list[Any] = [*trades, *days]
    cut = int(split * len(events))
    for i, event in enumerate(events):
        if i == cut:  # a crash and a restart from the JSON state
            truth = TruthBenchmarks.from_dict(json.loads(json.dumps(truth.to_dict())))
        if isinstance(event, DailyRecord):
            truth.record_day(event)
        else:
            truth.record_fill(entry())
            truth.record_exit(*exit_fill(*event))
    view = truth.view()
    json.dumps(view, allow_nan=False)
    # A ratio that overflows (a subnormal loss, say) is undefined: null, never infinity.
    expected = {
        k: v if v is None or math.isfinite(v) else None
        for k, v in batch(start, trades, days).items()
    }
    assert set(view) == METRICS == set(expected)
    for name, want in expected.items():
        got = view[name]
        if want is None or got is None:
            assert got == want, name
        else:
            assert got == pytest.approx(want, rel=1e-6, abs=1e-6), name


def test_view_is_rounded_for_display_but_state_is_not() -> None:
    truth = fed(trades=[(10.0, 0.0, 1.0), (-1.0 / 3, 0.0, 1.0), (-1.0, 0.0, 1.0)], days=[])
    view = truth.view()
    assert view["win_rate"] == 0.333333  # 1 / 3
    assert view["profit_factor"] == 7.5  # 10 / (4 / 3)
    assert view["largest_loss"] == -1.0
    assert view["avg_loss"] == -0.66666667  # (-4 / 3) / 2
    assert truth.to_dict()["gross_loss"] == -1.0 / 3 - 1.0
