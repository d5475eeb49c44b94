"""The orchestrator: the nightly cycle, and the companion of every live step.

Each live step advances the running paper test's shadow books and the guard rails of the last
deploy. Once a day, at ``[orchestrator] cycle_hour:cycle_minute`` UTC of the market clock, the
cycle:

1. announces ``orchestrator_cycle_started`` (committed at once: a long cycle is visible);
2. decides, while holding the engine: a rollback when the last deploy broke its guard rails,
   and the verdict of a paper test that reached its end;
3. asks the strategist (the AI when configured, else or failing that the optimiser) for a
   candidate, unless a paper test is still running, without holding the engine;
4. applies everything, holding the engine again, in ONE transaction with the engine's state and
   the events: rollback, ``paper_test_completed``, ``strategy_deployed``, ``paper_test_started``,
   ``orchestrator_cycle_completed``. A crash before that commit leaves the old version active
   and the cycle due again; after it, the new one. Never half of it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Executable
from sqlalchemy.ext.asyncio import AsyncEngine

from brain.book import TradingBook
from brain.ledger import Step
from brain.models import CandleBatch
from brain.notifier import Notifier
from brain.orchestrator import records
from brain.orchestrator.ai import AiStrategist
from brain.orchestrator.ai_usage import AiUsage
from brain.orchestrator.guard import DeployWatch
from brain.orchestrator.optimiser import Optimiser
from brain.orchestrator.proposal import NoProposal, Proposal
from brain.orchestrator.shadow import PaperTest
from brain.orchestrator.tiers import changes, paper_days, risk_tier
from brain.strategy import Strategy, StrategyParams, version_id
from brain.views import paper_test_view, strategy_view
from shared.settings import Settings
from shared.store.base import SnapshotName
from shared.timeutil import parse_iso, to_iso, utc_now

if TYPE_CHECKING:
    from brain.engine import TradingEngine

log = logging.getLogger(__name__)

# decision_type is the first of these the cycle did.
DECISION_ORDER = (
    "rolled_back",
    "deployed",
    "paper_test_started",
    "paper_test_failed",
    "paper_test_running",
    "no_change",
)


@dataclass(slots=True)
class Plan:
    """What phase 2 decided, for phase 4 to apply."""

    moment: datetime
    active: Strategy
    rollback: tuple[str, str, StrategyParams] | None = None  # reason, version, its params
    verdict: tuple[PaperTest, bool, dict[str, Any]] | None = None
    benchmarks: dict[str, Any] = field(default_factory=dict)
    waiting: bool = False  # a paper test is still running: no new candidate
    proposal: Proposal | None = None
    notes: list[str] = field(default_factory=list)  # why no candidate came, for the summary


class Orchestrator:
    def __init__(
        self,
        settings: Settings,
        sql: AsyncEngine,
        notifier: Notifier,
        ai_usage: AiUsage,
        *,
        optimiser: Optimiser,
        ai: AiStrategist | None,
        wall_clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._settings = settings
        self._rules = settings.orchestrator
        self._sql = sql
        self._notifier = notifier
        self._ai_usage = ai_usage
        self._optimiser = optimiser
        self._ai = ai
        self._wall_clock = wall_clock  # AI budgets are per wall-clock day, even in a replay
        self._next_cycle: datetime | None = None
        self._announced: datetime | None = None  # the cycle orchestrator_cycle_started announced
        self._paper: PaperTest | None = None
        self._watch: DeployWatch | None = None
        self._records = records.StrategyRecords(None, [], None)
        self._ai_doc: dict[str, Any] = {}
        self._running: asyncio.Task[str] | None = None

    # --- the step companion -----------------------------------------------------------------

    def restore(self, saved: Mapping[str, Any] | None) -> None:
        """Resume from what the last committed step saved."""
        if not saved:
            return
        self._next_cycle = parse_iso(saved["next_cycle_at"]) if saved["next_cycle_at"] else None
        self._announced = parse_iso(saved["announced"]) if saved.get("announced") else None
        paper, watch = saved["paper_test"], saved["watch"]
        self._paper = PaperTest.from_dict(paper, self._settings) if paper else None
        self._watch = DeployWatch.from_dict(watch) if watch else None

    def warm(self, batch: CandleBatch) -> None:
        if self._paper is not None:
            self._paper.warm(batch)

    def advance(self, batch: CandleBatch, step: Step, live: TradingBook) -> None:
        if self._next_cycle is None:
            self._next_cycle = self._cycle_after(batch.close_time)
        if self._paper is not None:
            self._paper.advance(batch)
        if self._watch is not None:
            self._watch.observe(live.value(), step)

    def to_dict(self) -> dict[str, Any]:
        return {
            "next_cycle_at": to_iso(self._next_cycle) if self._next_cycle else None,
            "announced": to_iso(self._announced) if self._announced else None,
            "paper_test": self._paper.to_dict() if self._paper else None,
            "watch": self._watch.to_dict() if self._watch else None,
        }

    def docs(self) -> dict[SnapshotName, Any]:
        found = self._records
        if self._paper is not None:
            paper: Mapping[str, Any] | None = self._paper.view()
        else:
            last = found.last_paper_test
            paper = paper_test_view(last) if last is not None else None
        return {
            SnapshotName.STRATEGY: strategy_view(found.active, found.recent, paper),
            SnapshotName.AI_USAGE: self._ai_doc,
        }

    async def refresh(self) -> None:
        self._records = await records.read_records(self._sql)
        self._ai_doc = await self._ai_usage.view(self._wall_clock())

    # --- the cycle --------------------------------------------------------------------------

    async def before_step(
        self, engine: TradingEngine, batch: CandleBatch, *, wait: bool, stop: asyncio.Event
    ) -> bool:
        """Run the cycle when it is due, before ``batch`` is traded. ``wait``: the market
        clock waits for it (a replay, deterministic); else it runs beside the trading loop (a
        live feed: trading goes on while the strategist thinks). True when it waited for one.
        A stop request does not wait for the cycle: ``aclose`` cancels it, uncommitted, and the
        caller must not trade ``batch`` (a restart runs the cycle again, then the batch)."""
        checkpoint = engine.checkpoint
        if checkpoint is None or batch.close_time <= checkpoint or not self.due(checkpoint):
            return False  # a restart's warm-up re-reads history: cycles run between live steps
        if self._running is not None and not self._running.done():
            return False
        self._running = asyncio.create_task(self.run_cycle(engine), name="nightly-cycle")
        if not wait:
            self._running.add_done_callback(_report_failure)
            return False
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait([self._running, stopping], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if self._running.done():
            self._running.result()  # a failure is raised here
        return True

    async def aclose(self) -> None:
        """Cancel a cycle in progress (its changes were not committed), stop the worker."""
        if self._running is not None and not self._running.done():
            self._running.cancel()
            with suppress(asyncio.CancelledError):
                await self._running
        self._optimiser.close()
        if self._ai is not None:
            await self._ai.aclose()

    def due(self, checkpoint: datetime | None) -> bool:
        return (
            self._rules.enabled
            and checkpoint is not None
            and self._next_cycle is not None
            and checkpoint >= self._next_cycle
        )

    def _cycle_after(self, moment: datetime) -> datetime:
        rules = self._rules
        at = moment.replace(
            hour=rules.cycle_hour, minute=rules.cycle_minute, second=0, microsecond=0
        )
        return at if at > moment else at + timedelta(days=1)

    async def run_cycle(self, engine: TradingEngine) -> str:
        """One nightly cycle; returns its decision type."""
        async with engine.exclusive():
            plan = await self._decide(engine)
            if self._announced != plan.moment:  # a cycle re-run after a crash: announced already
                self._announced = plan.moment
                self._notifier.orchestrator_cycle_started()
                await engine.commit_changes(Step(plan.moment, None))
            history = engine.history()
        if plan.verdict is None and self._paper is not None:
            plan.waiting = True
        else:
            plan.proposal = await self._propose(plan, history)
        async with engine.exclusive():
            decision = await self._apply(engine, plan)
        return decision

    async def _decide(self, engine: TradingEngine) -> Plan:
        moment = engine.clock()
        active = engine.strategy
        assert active is not None, "a cycle runs only after the first step"
        plan = Plan(moment, active, benchmarks=engine.truth_view)
        watch = self._watch
        if watch is not None:
            reason = watch.breach(self._rules)
            if reason is not None:
                params = await records.version_params(self._sql, watch.restore)
                plan.rollback = (reason, watch.restore, params)
        paper = self._paper
        if paper is not None and (plan.rollback is not None or moment >= paper.ends_at):
            passed, results = paper.judge(self._rules.min_edge_pct, self._rules.paper_min_trades)
            if plan.rollback is not None:  # its yardstick is gone: judge no more, start anew
                passed = False
                results["reason"] = (
                    f"cancelled: {paper.baseline_version}, the version it was compared with, "
                    "was rolled back"
                )
            plan.verdict = (paper, passed, results)
        return plan

    async def _propose(self, plan: Plan, history: Sequence[CandleBatch]) -> Proposal | None:
        base = plan.active.params
        if plan.rollback is not None:
            base = plan.rollback[2]
        if plan.verdict is not None and plan.verdict[1]:
            strategy = plan.verdict[0].candidate.book.state.strategy
            assert strategy is not None
            base = strategy.params
        if self._ai is not None:
            try:
                return await self._ai.propose(base, self._report(plan, base))
            except NoProposal as exc:
                plan.notes.append(f"AI strategist: {exc}")
            except Exception as exc:  # recording a call failed, say: the optimiser goes on
                log.exception("the AI strategist failed")
                self._notifier.system_error(f"the AI strategist failed: {exc}")
                plan.notes.append(f"AI strategist failed: {exc}")
            finally:
                self._ai_doc = await self._ai_usage.view(self._wall_clock())
        try:
            return await self._optimiser.propose(base, history, plan.moment)
        except NoProposal as exc:
            plan.notes.append(f"optimiser: {exc}")
        except Exception as exc:  # a crashed worker must not stop trading
            log.exception("the optimiser failed")
            self._notifier.system_error(f"the optimiser failed: {exc}")
            plan.notes.append(f"optimiser failed: {exc}")
        return None

    def _report(self, plan: Plan, base: StrategyParams) -> dict[str, Any]:
        """The compact performance report the AI strategist reads."""
        last = self._records.last_paper_test
        return {
            "market_time": to_iso(plan.moment),
            "active_version": plan.active.version,
            "parameters": base.to_dict(),
            "benchmarks": plan.benchmarks,
            "last_paper_test": paper_test_view(last) if last is not None else None,
            "rollback": plan.rollback[0] if plan.rollback else None,
        }

    async def _apply(self, engine: TradingEngine, plan: Plan) -> str:
        moment, current = plan.moment, plan.active
        statements: list[Executable] = []
        decisions: list[str] = []
        if plan.rollback is not None:
            reason, version, params = plan.rollback
            statements += records.activate(version, at=moment, replaced_status="rejected")
            current = Strategy(params, version)
            engine.adopt(current)
            self._watch = None
            self._notifier.strategy_rollback(reason, version)
            decisions.append("rolled_back")
        elif self._watch is not None and moment >= self._watch.until:
            self._watch = None  # the deploy kept within its guard rails
        if plan.verdict is not None:
            paper, passed, results = plan.verdict
            statements += records.finish_paper_test(
                paper.version, passed=passed, results=results, at=moment
            )
            self._notifier.paper_test_completed(paper.version, passed, results)
            self._paper = None
            if passed:
                candidate = paper.candidate.book.state.strategy
                assert candidate is not None
                statements += records.activate(candidate.version, at=moment)
                engine.adopt(candidate)
                self._watch = DeployWatch(
                    candidate.version,
                    current.version,
                    moment + timedelta(days=self._rules.rollback_window_days),
                    engine.value(),
                )
                diff = changes(current.params, candidate.params)
                self._notifier.strategy_deployed(candidate.version, paper.tier, diff)
                current = candidate
                decisions.append("deployed")
            else:
                decisions.append("paper_test_failed")
        if plan.proposal is not None:
            # the candles up to now: on a live feed, steps went on while the strategist thought
            history = engine.history()
            statements += self._start_paper_test(plan.proposal, current, history, moment)
            decisions.append("paper_test_started")
        if plan.waiting:
            decisions.append("paper_test_running")
        decisions = decisions or ["no_change"]
        decision = min(decisions, key=DECISION_ORDER.index)
        summary = "; ".join([*decisions, *plan.notes])
        self._next_cycle = self._cycle_after(moment)
        self._notifier.orchestrator_cycle_completed(decision, decisions, summary)
        log.info("nightly cycle at %s: %s", to_iso(moment), summary)
        await engine.commit_changes(Step(moment, None, statements=statements))
        return decision

    def _start_paper_test(
        self, proposal: Proposal, active: Strategy, history: list[CandleBatch], moment: datetime
    ) -> list[Executable]:
        tier = risk_tier(active.params, proposal.params, self._rules)
        days = paper_days(tier, self._rules)
        candidate = Strategy(proposal.params, version_id(moment))
        self._paper = PaperTest.start(
            self._settings, candidate, active, history, tier=tier, days=days, at=moment
        )
        self._notifier.paper_test_started(candidate.version, days)
        return records.add_candidate(
            candidate.version,
            proposal.params,
            tier=tier,
            description=f"{proposal.strategist}: {proposal.description}",
            at=moment,
            ends_at=self._paper.ends_at,
        )


def _report_failure(cycle: asyncio.Task[str]) -> None:
    """A cycle beside a live feed has nobody awaiting it: its failure is logged here."""
    if not cycle.cancelled() and cycle.exception() is not None:
        log.error("the nightly cycle failed", exc_info=cycle.exception())
