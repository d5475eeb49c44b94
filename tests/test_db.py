"""The SQL history: migrations, engines (writer and read-only), UTC datetimes, URLs."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, select, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import tables
from shared.db.engine import (
    DatabaseUrlError,
    create_engine,
    database_url,
    normalise_url,
    safe_url,
)
from shared.db.migrate import current_revision, head_revision, migrate_command, upgrade
from shared.settings import Secret, Settings
from tests.support.services import free_port


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    created = create_engine(database_url)
    yield created
    await created.dispose()


@pytest.fixture
async def migrated(engine: AsyncEngine) -> AsyncEngine:
    await upgrade(engine)
    return engine


async def table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


def trade(executed_at: datetime, symbol: str = "BTC/USDT") -> dict[str, object]:
    return {
        "symbol": symbol,
        "action": "BUY",
        "qty": 0.5,
        "price": 97_000.0,
        "fee": 4.85,
        "pnl": None,
        "pnl_pct": None,
        "strategy_version": "v20260208_010000",
        "executed_at": executed_at,
    }


# --- migrations ---------------------------------------------------------------------------


async def test_upgrade_from_empty_creates_every_table(engine: AsyncEngine) -> None:
    assert await table_names(engine) == set()
    assert await current_revision(engine) is None
    await upgrade(engine)
    assert await table_names(engine) == set(tables.metadata.tables) | {"alembic_version"}
    assert await current_revision(engine) == head_revision()


async def test_upgrade_twice_is_a_no_op(migrated: AsyncEngine) -> None:
    async with migrated.begin() as conn:
        await conn.execute(insert(tables.trades), [trade(datetime.now(UTC))])
    await upgrade(migrated)
    assert await current_revision(migrated) == head_revision()
    async with migrated.connect() as conn:
        assert (await conn.execute(select(tables.trades))).all() != []


async def test_migrations_match_the_tables(migrated: AsyncEngine) -> None:
    """The migrated schema is what tables.py says (nothing for autogenerate to add)."""

    def diff(sync: Connection) -> list[object]:
        context = MigrationContext.configure(sync, opts={"compare_type": True})
        return list(compare_metadata(context, tables.metadata))

    async with migrated.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_constraints_hold(migrated: AsyncEngine) -> None:
    now = datetime.now(UTC)
    bad_action = {**trade(now), "action": "HODL"}
    unknown_version = {"version": "v0", "status": "running", "started_at": now, "ends_at": now}
    async with migrated.connect() as conn:
        with pytest.raises(DBAPIError):
            await conn.execute(insert(tables.trades), [bad_action])
        await conn.rollback()
        with pytest.raises(DBAPIError):  # foreign key: no such strategy version
            await conn.execute(insert(tables.paper_tests), [unknown_version])


# --- types --------------------------------------------------------------------------------


async def test_datetimes_round_trip_as_aware_utc(migrated: AsyncEngine) -> None:
    moment = datetime(2026, 2, 9, 3, 10, 0, 123456, tzinfo=UTC)
    elsewhere = moment.astimezone(timezone(timedelta(hours=5, minutes=30)))
    naive = (moment + timedelta(seconds=1)).replace(tzinfo=None)  # taken to be UTC
    async with migrated.begin() as conn:
        await conn.execute(
            insert(tables.trades), [trade(elsewhere), trade(naive), trade(moment - timedelta(1))]
        )
    async with migrated.connect() as conn:
        rows = (
            await conn.execute(select(tables.trades.c.executed_at).order_by("executed_at"))
        ).scalars()
        got = list(rows)
    assert got == [
        moment - timedelta(1),
        moment,
        moment + timedelta(seconds=1),
    ]
    assert all(value.tzinfo is not None and value.utcoffset() == timedelta(0) for value in got)


async def test_datetimes_compare_in_queries(migrated: AsyncEngine) -> None:
    moment = datetime(2026, 2, 9, 3, 10, tzinfo=UTC)
    async with migrated.begin() as conn:
        await conn.execute(insert(tables.trades), [trade(moment), trade(moment + timedelta(1))])
    since = (moment + timedelta(hours=1)).astimezone(timezone(timedelta(hours=-7)))
    query = select(tables.trades.c.executed_at).where(tables.trades.c.executed_at > since)
    async with migrated.connect() as conn:
        assert list((await conn.execute(query)).scalars()) == [moment + timedelta(1)]


async def test_json_columns_round_trip(migrated: AsyncEngine) -> None:
    parameters = {"rsi": {"period": 14, "levels": [30, 70]}, "name": "mean reversion"}
    row = {
        "version": "v20260208_010000",
        "code_hash": "ab" * 32,
        "risk_tier": 2,
        "parameters": parameters,
        "status": "candidate",
        "created_at": datetime.now(UTC),
    }
    async with migrated.begin() as conn:
        await conn.execute(insert(tables.strategy_versions), [row])
    async with migrated.connect() as conn:
        got = (await conn.execute(select(tables.strategy_versions))).one()
    assert got.parameters == parameters
    assert got.description == ""
    assert got.deployed_at is None


# --- engines ------------------------------------------------------------------------------


async def test_read_only_engine_reads_but_cannot_write(
    migrated: AsyncEngine, database_url: str
) -> None:
    async with migrated.begin() as conn:
        await conn.execute(insert(tables.trades), [trade(datetime.now(UTC))])
    reader = create_engine(database_url, read_only=True)
    try:
        async with reader.connect() as conn:
            assert len((await conn.execute(select(tables.trades))).all()) == 1
        with pytest.raises(DBAPIError):
            async with reader.begin() as conn:
                await conn.execute(insert(tables.trades), [trade(datetime.now(UTC))])
        with pytest.raises(DBAPIError):
            async with reader.begin() as conn:
                await conn.execute(text("CREATE TABLE intruder (x INTEGER)"))
    finally:
        await reader.dispose()
    async with migrated.connect() as conn:
        assert len((await conn.execute(select(tables.trades))).all()) == 1


async def test_sqlite_reader_opens_while_writer_is_away(tmp_path: Path) -> None:
    """The API may start before the brain, or outlive it: the WAL file need not exist."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'history.db'}"
    writer = create_engine(url)
    await upgrade(writer)
    await writer.dispose()
    reader = create_engine(url, read_only=True)
    try:
        async with reader.connect() as conn:
            assert (await conn.execute(select(tables.trades))).all() == []
    finally:
        await reader.dispose()


async def test_sqlite_reader_sees_the_writers_commits(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'history.db'}"
    writer = create_engine(url)
    reader = create_engine(url, read_only=True)
    try:
        await upgrade(writer)
        async with reader.connect() as conn:
            assert (await conn.execute(select(tables.trades))).all() == []
        async with writer.begin() as conn:
            await conn.execute(insert(tables.trades), [trade(datetime.now(UTC))])
        async with reader.connect() as conn:
            assert len((await conn.execute(select(tables.trades))).all()) == 1
    finally:
        await reader.dispose()
        await writer.dispose()


async def test_sqlite_writer_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "history.db"  # the parent is created
    writer = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with writer.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA synchronous"))).scalar() == 1  # NORMAL
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 5000
    finally:
        await writer.dispose()
    assert path.exists()


def test_read_only_sqlite_needs_a_file() -> None:
    with pytest.raises(DatabaseUrlError):
        create_engine("sqlite+aiosqlite://", read_only=True)


# --- URLs ---------------------------------------------------------------------------------


def with_database_url(settings: Settings, url: str | None) -> Settings:
    secrets = dataclasses.replace(
        settings.secrets, database_url=None if url is None else Secret(url)
    )
    return dataclasses.replace(settings, secrets=secrets)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:pw@db:5432/tb", "postgresql+asyncpg://u:pw@db:5432/tb"),
        ("postgres://u:pw@db/tb", "postgresql+asyncpg://u:pw@db/tb"),
        ("postgresql+asyncpg://u@db/tb", "postgresql+asyncpg://u@db/tb"),
        ("sqlite:///var/h.db", "sqlite+aiosqlite:///var/h.db"),
        ("sqlite:////abs/h.db", "sqlite+aiosqlite:////abs/h.db"),
        ("sqlite+aiosqlite:///h.db", "sqlite+aiosqlite:///h.db"),
        ("  postgres://db/tb  ", "postgresql+asyncpg://db/tb"),
    ],
)
def test_database_url_from_the_secret(base_settings: Settings, given: str, expected: str) -> None:
    assert database_url(with_database_url(base_settings, given)) == expected


def test_database_url_defaults_to_the_sqlite_file(base_settings: Settings) -> None:
    settings = with_database_url(base_settings, None)
    assert database_url(settings) == f"sqlite+aiosqlite:///{base_settings.database.sqlite_path}"
    settings = dataclasses.replace(
        settings, database=dataclasses.replace(settings.database, sqlite_path="/srv/tb/h.db")
    )
    assert database_url(settings) == "sqlite+aiosqlite:////srv/tb/h.db"
    assert database_url(with_database_url(settings, "")) == "sqlite+aiosqlite:////srv/tb/h.db"


def test_passwords_never_show(base_settings: Settings) -> None:
    assert "hunter2" not in safe_url("postgresql+asyncpg://tb:hunter2@db/tb")
    assert "hunter2" not in safe_url("not a url hunter2")
    with pytest.raises(DatabaseUrlError) as raised:
        normalise_url("mysql://tb:hunter2@db/tb")
    assert "hunter2" not in str(raised.value)
    with pytest.raises(DatabaseUrlError) as raised:
        database_url(with_database_url(base_settings, "::hunter2::"))
    assert "hunter2" not in str(raised.value)


# --- the command --------------------------------------------------------------------------


def with_password(url: str, password: str) -> str:
    """``url`` carrying a password (PostgreSQL here trusts local users, so any one works)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return url
    return parsed.set(password=password).render_as_string(hide_password=False)


def run_migrate(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    migrate_command.configure(parser)
    return migrate_command.run(parser.parse_args(list(argv)))


async def test_migrate_command(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    monkeypatch.setenv("DATABASE_URL", with_password(database_url, "hunter2"))
    # The command runs its own event loop, as it does from the console script.
    assert await asyncio.to_thread(run_migrate) == 0
    assert await asyncio.to_thread(run_migrate) == 0  # again: nothing to do
    out, err = capsys.readouterr()
    assert f"at revision {head_revision()}" in out
    assert "hunter2" not in out + err
    engine = create_engine(database_url)
    try:
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()


def test_migrate_command_reports_an_unreachable_database(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    port = free_port()  # nothing listens there
    monkeypatch.setenv("DATABASE_URL", f"postgresql://tb:hunter2@127.0.0.1:{port}/tb")
    assert run_migrate() == 1
    out, err = capsys.readouterr()
    assert "cannot migrate" in err
    assert "hunter2" not in out + err
    monkeypatch.setenv("DATABASE_URL", "mysql://tb:hunter2@db/tb")
    assert run_migrate() == 2
    assert "hunter2" not in "".join(capsys.readouterr())


async def test_sqlite_writer_transactions_hold_the_write_lock_from_the_start(
    tmp_path: Path,
) -> None:
    """So a transaction that reads, then writes, can never fail on a write committed by another
    connection in between (SQLITE_BUSY_SNAPSHOT): the other waits instead."""
    path = tmp_path / "history.db"
    writer = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await upgrade(writer)
        async with writer.begin() as conn:
            await conn.execute(select(tables.trades))  # only read so far
            other = sqlite3.connect(path, timeout=0, isolation_level=None)
            try:
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    other.execute("BEGIN IMMEDIATE")
            finally:
                other.close()
    finally:
        await writer.dispose()


async def test_upgrading_keeps_existing_data(engine: AsyncEngine) -> None:
    """A database at an older revision, with data in it, upgrades without losing any."""
    opened = datetime(2024, 8, 5, 12, 0, tzinfo=UTC)
    await upgrade(engine, "0001")
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO positions (symbol, qty, entry_price, stop_loss, take_profit,"
                " opened_at, strategy_version) VALUES ('BTC/USDT', 0.002, 50000, 49000, 52000,"
                " :opened, 'v20240805_000000')"
            ),
            {"opened": opened},
        )
        await conn.execute(
            insert(tables.trades).values(
                symbol="BTC/USDT",
                action="BUY",
                qty=0.002,
                price=50000.0,
                fee=0.1,
                strategy_version="v20240805_000000",
                executed_at=opened,
            )
        )
    await upgrade(engine)
    assert await current_revision(engine) == head_revision()
    async with engine.connect() as conn:
        position = (await conn.execute(select(tables.positions))).one()
        trades = (await conn.execute(select(tables.trades))).all()
    assert (position.symbol, position.qty, position.cost) == ("BTC/USDT", 0.002, 100.0)
    assert position.opened_at == opened
    assert len(trades) == 1
