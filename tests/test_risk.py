"""Risk limits: sizing, refusals, halts and their clearing, the API's view, crash recovery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brain.models import Fill
from brain.risk import RiskManager
from shared import jsonutil
from shared.events import Action
from shared.settings import RiskSettings

LIMITS = RiskSettings(
    max_position_pct=0.15,
    max_positions=5,
    max_daily_loss_pct=0.06,
    max_drawdown_pct=0.12,
    max_daily_trades=20,
    max_consecutive_losses=4,
)
DAY1 = datetime(2024, 7, 22, 10, 0, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
DAY3 = DAY1 + timedelta(days=2)


class Calls:
    """What the callbacks were told, in order."""

    def __init__(self) -> None:
        self.log: list[str] = []

    def halt(self, reason: str) -> None:
        self.log.append(f"halt: {reason}")

    def resume(self) -> None:
        self.log.append("resume")


def manager(starting_value: float = 1000.0) -> tuple[RiskManager, Calls]:
    calls = Calls()
    risk = RiskManager(LIMITS, starting_value, on_halt=calls.halt, on_resume=calls.resume)
    return risk, calls


def fill(pnl: float | None) -> Fill:
    action: Action = "BUY" if pnl is None else "SELL"
    pct = None if pnl is None else pnl
    return Fill("ETH/USDT", action, 1.0, 100.0, 0.1, pnl, pct, "v1", DAY1, "signal")


def entry(
    risk: RiskManager,
    notional: float = 100.0,
    value: float = 1000.0,
    *,
    open_positions: int = 0,
    holding: bool = False,
    now: datetime = DAY1,
    exposure: float = 0.0,
) -> tuple[float, str | None]:
    return risk.check_entry(
        "ETH/USDT",
        notional,
        value,
        open_positions=open_positions,
        holding=holding,
        now=now,
        exposure=exposure,
    )


def test_an_entry_within_the_limits_is_allowed_in_full() -> None:
    risk, _ = manager()
    assert entry(risk, 100.0) == (100.0, None)


def test_an_entry_is_clipped_to_the_position_cap_counting_what_is_held() -> None:
    risk, _ = manager()
    assert entry(risk, 500.0) == pytest.approx((150.0, None))
    assert entry(risk, 500.0, holding=True, exposure=100.0) == pytest.approx((50.0, None))
    assert entry(risk, 500.0, holding=True, exposure=149.5) == (
        0.0,
        "position too small after clipping",
    )
    assert entry(risk, 0.5) == (0.0, "position too small after clipping")
    assert entry(risk, 500.0, holding=True, exposure=400.0)[1] == (
        "position too small after clipping"
    )


def test_the_minimum_notional_is_a_constructor_argument() -> None:
    risk = RiskManager(LIMITS, 1000.0, min_notional=10.0)
    assert entry(risk, 9.0) == (0.0, "position too small after clipping")
    assert entry(risk, 10.0) == (10.0, None)


def test_max_positions_blocks_new_symbols_but_not_adds() -> None:
    risk, _ = manager()
    assert entry(risk, open_positions=5) == (0.0, "max positions reached")
    assert entry(risk, open_positions=4) == (100.0, None)
    assert entry(risk, open_positions=5, holding=True, exposure=10.0) == (100.0, None)


def test_the_daily_trade_limit_counts_every_fill_and_resets_the_next_day() -> None:
    risk, _ = manager()
    for _ in range(10):
        risk.record_fill(fill(None), DAY1)
        risk.record_fill(fill(1.0), DAY1)
    assert risk.daily_trades == 20
    assert entry(risk) == (0.0, "daily trade limit reached")
    assert entry(risk, now=DAY2) == (100.0, None)
    assert risk.daily_trades == 0


def test_a_daily_loss_halts_until_the_next_utc_day() -> None:
    risk, calls = manager()
    risk.mark(1000.0, DAY1)
    risk.mark(941.0, DAY1 + timedelta(hours=1))
    assert not risk.halted
    risk.mark(940.0, DAY1 + timedelta(hours=2))  # exactly 6 %
    assert risk.halted
    assert risk.halt_kind == "daily"
    assert calls.log == ["halt: daily loss 6.00% (limit 6.00%)"]
    risk.mark(900.0, DAY1 + timedelta(hours=3))
    assert len(calls.log) == 1  # announced once
    allowed, reason = entry(risk, value=900.0)
    assert allowed == 0.0
    assert reason == "halted: daily loss 6.00% (limit 6.00%)"
    risk.mark(900.0, DAY2.replace(hour=0))  # midnight UTC: a new day
    assert not risk.halted
    assert calls.log[1:] == ["resume"]
    assert risk.view()["current"]["daily_pnl"] == 0.0
    assert entry(risk, value=900.0, now=DAY2) == (100.0, None)


def test_a_new_day_seen_first_by_check_entry_also_clears_a_daily_halt() -> None:
    risk, calls = manager()
    risk.mark(1000.0, DAY1)
    risk.mark(900.0, DAY1)
    assert entry(risk, value=900.0, now=DAY2) == (100.0, None)
    assert calls.log[-1] == "resume"


def test_days_are_utc_days() -> None:
    risk, _ = manager()
    berlin_summer = timezone(timedelta(hours=2))
    risk.mark(1000.0, datetime(2024, 7, 23, 1, 30, tzinfo=berlin_summer))  # 22 July in UTC
    risk.mark(939.0, datetime(2024, 7, 22, 23, 59, tzinfo=UTC))
    assert risk.halted
    risk.mark(939.0, datetime(2024, 7, 23, 0, 0, tzinfo=UTC))
    assert not risk.halted


def test_a_drawdown_halt_outlives_the_day_and_needs_resume() -> None:
    risk, calls = manager()
    # 4 % a day: never the daily limit, 12 % from the peak on the third day.
    for day, (start, end) in enumerate([(1000.0, 960.0), (960.0, 920.0), (920.0, 880.0)]):
        moment = DAY1 + timedelta(days=day)
        risk.mark(start, moment)
        risk.mark(end, moment + timedelta(hours=1))
    assert risk.halt_kind == "drawdown"
    assert calls.log == ["halt: drawdown 12.00% from the peak (limit 12.00%)"]
    risk.mark(880.0, DAY3 + timedelta(days=1))
    assert risk.halted  # a new day does not clear it
    assert entry(risk, value=880.0, now=DAY3 + timedelta(days=1))[1] == (
        "halted: drawdown 12.00% from the peak (limit 12.00%)"
    )
    assert risk.resume() is True
    assert calls.log[1:] == ["resume"]
    assert risk.drawdown_pct == 0.0  # the peak starts again from here
    risk.mark(870.0, DAY3 + timedelta(days=1, hours=1))
    assert not risk.halted


def test_consecutive_losses_halt_for_the_day_and_a_win_resets_the_count() -> None:
    risk, calls = manager()
    for pnl in (-1.0, -1.0, -1.0, 0.0, -1.0, -1.0, -1.0):
        risk.record_fill(fill(pnl), DAY1)
        risk.record_fill(fill(None), DAY1)  # entries do not count either way
    assert risk.consecutive_losses == 3
    assert not risk.halted
    risk.record_fill(fill(-0.01), DAY1)
    assert risk.halt_kind == "consecutive_losses"
    assert calls.log == ["halt: 4 consecutive losing trades (limit 4)"]
    risk.record_fill(fill(-1.0), DAY1)
    assert len(calls.log) == 1
    risk.mark(1000.0, DAY2)  # a cooling-off: the next UTC day clears it and starts the count
    assert not risk.halted
    assert risk.consecutive_losses == 0
    assert calls.log[1:] == ["resume"]


def test_consecutive_losses_can_also_be_resumed_by_hand() -> None:
    risk, _ = manager()
    for _ in range(4):
        risk.record_fill(fill(-1.0), DAY1)
    assert risk.halt_kind == "consecutive_losses"
    assert risk.resume()
    assert (risk.halted, risk.consecutive_losses) == (False, 0)


def test_a_sticky_halt_replaces_a_daily_one() -> None:
    risk, calls = manager()
    risk.mark(1000.0, DAY1)
    risk.mark(930.0, DAY1)
    assert risk.halt_kind == "daily"
    risk.mark(880.0, DAY1)
    assert risk.halt_kind == "drawdown"
    assert [line.split(" ")[1] for line in calls.log] == ["daily", "drawdown"]
    risk.mark(880.0, DAY2)
    assert risk.halt_kind == "drawdown"
    assert "resume" not in calls.log


def test_when_both_trip_at_once_only_the_drawdown_is_announced() -> None:
    risk, calls = manager()
    risk.mark(1000.0, DAY1)
    risk.mark(850.0, DAY1)
    assert risk.halt_kind == "drawdown"
    assert len(calls.log) == 1


def test_resume_starts_every_breached_limit_afresh() -> None:
    risk, calls = manager()
    risk.mark(1000.0, DAY1)
    risk.mark(930.0, DAY1)
    assert risk.resume()
    risk.mark(930.0, DAY1)
    assert not risk.halted  # not halted again by the same loss
    assert risk.view()["current"]["daily_pnl"] == -70.0  # the day's pnl is still reported
    risk.mark(874.0, DAY1)  # 6 % below the resume's 930 (and 12.6 % below the peak)
    assert risk.halted
    assert calls.log[1] == "resume"
    assert len(calls.log) == 3


def test_resume_when_not_halted_does_nothing() -> None:
    risk, calls = manager()
    risk.record_fill(fill(-1.0), DAY1)
    assert risk.resume() is False
    assert risk.consecutive_losses == 1
    assert calls.log == []


def test_callbacks_are_optional() -> None:
    risk = RiskManager(LIMITS, 1000.0)
    risk.mark(1000.0, DAY1)
    risk.mark(800.0, DAY1)
    assert risk.halted
    assert risk.resume()


def test_view_has_the_plans_shape_in_fractions() -> None:
    risk, _ = manager(200.0)
    risk.mark(200.0, DAY1)
    risk.record_fill(fill(None), DAY1)
    risk.record_fill(fill(-1.2), DAY1)
    risk.record_fill(fill(None), DAY1)
    risk.mark(198.8, DAY1)
    assert risk.view() == {
        "limits": {
            "max_position_pct": 0.15,
            "max_positions": 5,
            "max_daily_loss_pct": 0.06,
            "max_drawdown_pct": 0.12,
            "max_daily_trades": 20,
            "max_consecutive_losses": 4,
        },
        "current": {
            "daily_pnl": -1.2,
            "daily_pnl_pct": -0.006,
            "daily_trades": 3,
            "consecutive_losses": 1,
            "drawdown_pct": 0.006,
            "halted": False,
            "halt_reason": None,
        },
    }
    jsonutil.dumps(risk.view())


def test_from_dict_rejects_an_unknown_halt_kind() -> None:
    state = manager()[0].to_dict() | {"halt_kind": "bored"}
    with pytest.raises(ValueError, match="halt kind"):
        RiskManager.from_dict(state, LIMITS)


# --- property: a restored manager continues exactly like the original -------------------------

operations = st.lists(
    st.one_of(
        st.tuples(st.just("mark"), st.floats(-0.07, 0.04)),  # a random walk of the value
        st.tuples(st.just("fill"), st.one_of(st.none(), st.floats(-10.0, 5.0))),
        st.tuples(st.just("entry"), st.floats(0.0, 400.0), st.integers(0, 6), st.floats(0, 200)),
        st.tuples(st.just("resume")),
    ),
    min_size=20,
    max_size=60,
)


def step(risk: RiskManager, op: tuple[object, ...], now: datetime, value: float) -> object:
    match op:
        case ("mark", float()):
            risk.mark(value, now)
            return None
        case ("fill", pnl):
            assert pnl is None or isinstance(pnl, float)
            risk.record_fill(fill(pnl), now)
            return None
        case ("entry", float(notional), int(count), float(exposure)):
            held = exposure > 0
            return risk.check_entry(
                "X", notional, value, open_positions=count, holding=held, now=now, exposure=exposure
            )
        case ("resume",):
            return risk.resume()
    raise AssertionError(op)


@settings(deadline=None, max_examples=300)
@given(
    ops=operations,
    gaps=st.lists(st.integers(0, 240), min_size=60, max_size=60),  # minutes: days roll
    at=st.floats(0.0, 1.0),
)
def test_a_restored_manager_continues_identically(
    ops: list[tuple[object, ...]], gaps: list[int], at: float
) -> None:
    split = round(len(ops) * at)
    original, original_calls = manager()
    times = [DAY1 + timedelta(minutes=sum(gaps[: i + 1])) for i in range(len(ops))]
    values, value = [], 1000.0
    for op in ops:
        if op[0] == "mark":
            value *= 1 + float(op[1])  # type: ignore[arg-type]
        values.append(value)
    for op, now, value in zip(ops[:split], times, values, strict=False):
        step(original, op, now, value)
        state = original.to_dict()
        assert RiskManager.from_dict(state, LIMITS).to_dict() == state
    restored_calls = Calls()
    restored = RiskManager.from_dict(
        jsonutil.loads(jsonutil.dumps(original.to_dict())),
        LIMITS,
        on_halt=restored_calls.halt,
        on_resume=restored_calls.resume,
    )
    assert restored.view() == original.view()
    already = len(original_calls.log)
    for op, now, value in zip(ops[split:], times[split:], values[split:], strict=True):
        assert step(restored, op, now, value) == step(original, op, now, value)
        assert restored.to_dict() == original.to_dict()
        assert restored.view() == original.view()
    assert restored_calls.log == original_calls.log[already:]
