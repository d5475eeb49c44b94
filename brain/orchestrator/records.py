"""The nightly cycle's SQL: the statements that record a candidate, judge a paper test, deploy
and roll back (each cycle commits its statements in one transaction with the engine's state and
events), and the reads behind the strategy document."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Executable, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from brain.strategy import StrategyParams, code_hash
from shared.db import tables

versions = tables.strategy_versions
paper_tests = tables.paper_tests


def add_candidate(
    version: str,
    params: StrategyParams,
    *,
    tier: int,
    description: str,
    at: datetime,
    ends_at: datetime,
) -> list[Executable]:
    """A new version under paper test."""
    return [
        insert(versions).values(
            version=version,
            code_hash=code_hash(params),
            risk_tier=tier,
            description=description,
            parameters=params.to_dict(),
            status="candidate",
            created_at=at,
        ),
        insert(paper_tests).values(
            version=version, status="running", started_at=at, ends_at=ends_at
        ),
    ]


def finish_paper_test(
    version: str, *, passed: bool, results: Mapping[str, Any], at: datetime
) -> list[Executable]:
    """Record the verdict; a failed candidate is rejected for good."""
    statements: list[Executable] = [
        update(paper_tests)
        .where(paper_tests.c.version == version, paper_tests.c.status == "running")
        .values(status="passed" if passed else "failed", completed_at=at, results=dict(results))
    ]
    if not passed:
        statements.append(
            update(versions)
            .where(versions.c.version == version)
            .values(status="rejected", retired_at=at)
        )
    return statements


def activate(version: str, *, at: datetime, replaced_status: str = "retired") -> list[Executable]:
    """Make ``version`` the active one; the one it replaces becomes ``replaced_status``
    (retired after a deploy, rejected after a rollback)."""
    return [
        update(versions)
        .where(versions.c.status == "active")
        .values(status=replaced_status, retired_at=at),
        update(versions)
        .where(versions.c.version == version)
        .values(status="active", deployed_at=at, retired_at=None),
    ]


@dataclass(frozen=True, slots=True)
class StrategyRecords:
    """What the strategy document shows from SQL."""

    active: Any | None  # a strategy_versions row
    recent: list[Any]
    last_paper_test: Any | None  # a paper_tests row


async def read_records(engine: AsyncEngine, recent: int = 10) -> StrategyRecords:
    async with engine.connect() as conn:
        active = (await conn.execute(select(versions).where(versions.c.status == "active"))).first()
        rows = await conn.execute(
            select(versions).order_by(versions.c.created_at.desc()).limit(recent)
        )
        last = await conn.execute(select(paper_tests).order_by(paper_tests.c.id.desc()).limit(1))
        return StrategyRecords(active, list(rows.all()), last.first())


async def version_params(engine: AsyncEngine, version: str) -> StrategyParams:
    async with engine.connect() as conn:
        row = (
            await conn.execute(select(versions.c.parameters).where(versions.c.version == version))
        ).one()
    return StrategyParams.from_dict(row.parameters)
