"""Alembic environment: run by ``shared.db.migrate`` on a connection it passes in.

The "sharing a connection" recipe: the caller opens the (async) engine's connection and hands
its sync side over in ``config.attributes["connection"]``, so there is no alembic.ini and no
URL here (nor a password to leak).
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection

from shared.db import tables
from shared.db.types import UTCDateTime

config = context.config
target_metadata = tables.metadata


def render_item(kind: str, item: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Autogenerate writes UTCDateTime as its plain DDL type, so migrations never import
    application code (which may change after the migration was written)."""
    if kind == "type" and isinstance(item, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    if context.is_offline_mode():
        raise RuntimeError(
            "offline (--sql) migrations are not supported; use `tradingbrain migrate`"
        )
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations with `tradingbrain migrate` (shared.db.migrate)")
    run_migrations(connection)


main()
