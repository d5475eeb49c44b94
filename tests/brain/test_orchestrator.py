"""End to end: the nightly cycle over the shipped three weeks (the session replay, with the
optimiser and the tight guard rails of tests/support/replay.py). SQL, snapshots and events
must show the same paper tests, deploys and rollbacks."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.db import tables
from shared.events import Event, EventName
from shared.store.base import SnapshotName
from shared.timeutil import to_iso
from tests.brain.test_replay import read_events, read_snapshots, sql_rows
from tests.support.replay import Replay

CYCLES = 21  # one at 01:00 UTC of each replayed day


def named(events: list[Event], name: EventName) -> list[Event]:
    return [event for event in events if event.name is name]


async def test_every_replayed_day_runs_one_nightly_cycle(replay: Replay) -> None:
    events = await read_events(replay)
    started = named(events, EventName.ORCHESTRATOR_CYCLE_STARTED)
    completed = named(events, EventName.ORCHESTRATOR_CYCLE_COMPLETED)
    assert len(started) == len(completed) == CYCLES
    first = datetime(2024, 7, 22, 1, tzinfo=UTC)
    expected = [to_iso(first + timedelta(days=day)) for day in range(CYCLES)]
    assert [to_iso(event.timestamp) for event in completed] == expected
    kinds = Counter(event.data["decision_type"] for event in completed)
    assert {"paper_test_started", "deployed", "rolled_back"} <= set(kinds), kinds
    for event in completed:
        assert event.data["decision_type"] in event.data["decisions"]
    # Each cycle's events sit between its start and its completion, and the replay's market
    # clock waits for the cycle: no step commits inside one.
    cycle_events = {
        EventName.PAPER_TEST_STARTED,
        EventName.PAPER_TEST_COMPLETED,
        EventName.STRATEGY_DEPLOYED,
        EventName.STRATEGY_ROLLBACK,
    }
    inside = False
    for event in events:
        if event.name is EventName.ORCHESTRATOR_CYCLE_STARTED:
            assert not inside
            inside = True
        elif event.name is EventName.ORCHESTRATOR_CYCLE_COMPLETED:
            assert inside
            inside = False
        assert inside or event.name not in cycle_events, event
        assert not inside or event.name is not EventName.SCAN_COMPLETE, event


async def test_paper_tests_in_sql_match_their_events(replay: Replay) -> None:
    events = await read_events(replay)
    tests = {row.version: row for row in await sql_rows(replay, tables.paper_tests)}
    started = named(events, EventName.PAPER_TEST_STARTED)
    completed = named(events, EventName.PAPER_TEST_COMPLETED)
    assert started
    assert completed
    assert [e.data["version"] for e in started] == sorted(tests)
    for event in started:
        row = tests[event.data["version"]]
        assert row.ends_at - row.started_at == timedelta(days=event.data["days"])
        assert row.started_at == event.timestamp
    for event in completed:
        row = tests[event.data["version"]]
        assert row.status == ("passed" if event.data["passed"] else "failed")
        assert row.results == event.data["results"]
        assert row.completed_at == event.timestamp
        cancelled = row.results["reason"].startswith("cancelled")  # by a rollback, early
        assert row.completed_at == row.ends_at or (cancelled and row.completed_at < row.ends_at)
        candidate = row.results["candidate"]
        edge = candidate["return_pct"] - row.results["active"]["return_pct"]
        assert event.data["passed"] == (not cancelled and candidate["trades"] >= 1 and edge >= 0)
    running = [row for row in tests.values() if row.status == "running"]
    assert len(running) <= 1


async def test_deploys_and_rollbacks_match_the_versions_table(replay: Replay) -> None:
    events = await read_events(replay)
    versions = {row.version: row for row in await sql_rows(replay, tables.strategy_versions)}
    deployed = named(events, EventName.STRATEGY_DEPLOYED)
    rollbacks = named(events, EventName.STRATEGY_ROLLBACK)
    assert deployed
    assert rollbacks
    passed = {
        e.data["version"] for e in named(events, EventName.PAPER_TEST_COMPLETED) if e.data["passed"]
    }
    for event in deployed:
        version = versions[event.data["version"]]
        assert event.data["version"] in passed  # only a version that passed its paper test
        assert event.data["tier"] == version.risk_tier
        assert event.data["changes"]
        for name, change in event.data["changes"].items():
            assert change["to"] == version.parameters[name] != change["from"]
    for event in rollbacks:
        assert event.data["version"] in versions
        assert "since" in event.data["reason"]
    # a rolled-back version was deployed once and is rejected now
    rejected_after_deploy = [
        v for v in versions.values() if v.status == "rejected" and v.deployed_at is not None
    ]
    assert rejected_after_deploy
    assert [v.status for v in versions.values()].count("active") == 1


async def test_the_strategy_snapshot_agrees_with_sql(replay: Replay) -> None:
    snapshots = await read_snapshots(replay)
    strategy = snapshots[SnapshotName.STRATEGY]
    versions = await sql_rows(replay, tables.strategy_versions)
    (active,) = [row for row in versions if row.status == "active"]
    assert strategy["active"]["version"] == active.version
    assert strategy["active"]["parameters"] == active.parameters
    assert strategy["active"]["deployed_at"] == to_iso(active.deployed_at)
    newest = sorted(versions, key=lambda row: row.created_at, reverse=True)[:10]
    assert [v["version"] for v in strategy["recent_versions"]] == [v.version for v in newest]
    assert [v["status"] for v in strategy["recent_versions"]] == [v.status for v in newest]
    tests = await sql_rows(replay, tables.paper_tests)
    last = max(tests, key=lambda row: row.id)
    paper: dict[str, Any] = strategy["paper_test"]
    assert paper["version"] == last.version
    assert paper["status"] == last.status
    assert paper["ends_at"] == to_iso(last.ends_at)


async def test_ai_usage_is_published_without_an_ai_key(replay: Replay) -> None:
    usage = (await read_snapshots(replay))[SnapshotName.AI_USAGE]
    today = usage["today"]
    assert today["total_tokens"] == 0
    assert today["total_cost_usd"] == 0
    assert today["by_model"] == {}
    assert today["budget_remaining"] == replay.settings.ai.daily_token_budget
    assert await sql_rows(replay, tables.ai_calls) == []


async def test_a_rollback_cancels_the_paper_test_measured_against_the_rolled_back_version(
    replay: Replay,
) -> None:
    events = await read_events(replay)
    cycles: list[list[Event]] = []
    for event in events:
        if event.name is EventName.ORCHESTRATOR_CYCLE_STARTED:
            cycles.append([])
        elif cycles:
            cycles[-1].append(event)
    rollbacks = [c for c in cycles if any(e.name is EventName.STRATEGY_ROLLBACK for e in c)]
    assert rollbacks
    cancelled = 0
    for cycle in rollbacks:
        (rollback,) = named(cycle, EventName.STRATEGY_ROLLBACK)
        assert not named(cycle, EventName.STRATEGY_DEPLOYED)  # no deploy over a fresh restore
        for completed in named(cycle, EventName.PAPER_TEST_COMPLETED):
            assert completed.data["passed"] is False
            assert completed.data["results"]["reason"].startswith("cancelled")
            cancelled += 1
        for started in named(cycle, EventName.PAPER_TEST_STARTED):
            # the new candidate is measured against the restored version
            assert started.data["version"] != rollback.data["version"]
    assert cancelled, "a rollback met a running paper test in these three weeks"
