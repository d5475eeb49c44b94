"""Schema migrations (alembic), run programmatically: ``tradingbrain migrate`` or ``upgrade()``.

No alembic.ini: the script location is this package's ``migrations`` folder, and the
connection is passed to ``migrations/env.py`` in ``config.attributes`` (alembic's "sharing a
connection" recipe), so it works the same for SQLite and PostgreSQL, in tests and in a wheel.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.cli import Command
from shared.config import load_settings
from shared.db.engine import DatabaseUrlError, create_engine, database_url, safe_url

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_FAILED = 1
_USAGE_ERROR = 2  # as the CLI uses for bad settings


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision the code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations found"
    return head


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database's schema up to ``revision`` (a no-op when it is there already)."""

    def run(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    # One transaction: on PostgreSQL a failed migration leaves nothing half done.
    async with engine.begin() as conn:
        await conn.run_sync(run)


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (None when it was never migrated)."""

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(read)


async def _migrate(url: str, revision: str) -> str | None:
    engine = create_engine(url)
    try:
        await upgrade(engine, revision)
        return await current_revision(engine)
    finally:
        await engine.dispose()


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--revision", default="head", help="the revision to upgrade to (default: head)"
    )


def _run(args: argparse.Namespace) -> int:
    settings = load_settings()
    try:
        url = database_url(settings)
    except DatabaseUrlError as error:
        print(f"tradingbrain migrate: {error}", file=sys.stderr)
        return _USAGE_ERROR
    print(f"migrating {safe_url(url)}")
    try:
        revision = asyncio.run(_migrate(url, str(args.revision)))
    except (OSError, DBAPIError) as error:  # unreachable server, bad credentials, locked file
        # Only the error's first line: no SQL and no parameters, and never the URL itself.
        first_line = str(getattr(error, "orig", None) or error).splitlines()[0]
        print(
            f"tradingbrain migrate: cannot migrate {safe_url(url)}: {first_line}", file=sys.stderr
        )
        return _FAILED
    print(f"database at revision {revision}")
    return 0


migrate_command = Command(
    help="create or upgrade the SQL history schema (DATABASE_URL, else database.sqlite_path)",
    configure=_configure,
    run=_run,
)

if __name__ == "__main__":  # pragma: no cover - convenience: python -m shared.db.migrate
    parser = argparse.ArgumentParser(prog="migrate")
    _configure(parser)
    sys.exit(_run(parser.parse_args()))
