"""Engines for the SQL history: SQLite (the embedded default) or PostgreSQL, always async.

The brain opens the one writer; the Data API opens a read-only engine, which the database
itself enforces (SQLite ``mode=ro``, PostgreSQL ``default_transaction_read_only``), so a bug
in the API can never change history. URLs may carry a password: only ever log ``safe_url``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from shared import jsonutil
from shared.settings import Settings

log = logging.getLogger(__name__)

SQLITE_DRIVER = "sqlite+aiosqlite"
POSTGRES_DRIVER = "postgresql+asyncpg"
BUSY_TIMEOUT_MS = 5000

# JSON columns encode like the wire does (orjson: UTC datetimes with Z, NaN as null).
_JSON_OPTIONS: dict[str, Any] = {
    "json_serializer": jsonutil.dumps_str,
    "json_deserializer": jsonutil.loads,
}

# Plain schemes people write in DATABASE_URL, and the async driver each one means.
_DRIVERS = {
    "sqlite": SQLITE_DRIVER,
    SQLITE_DRIVER: SQLITE_DRIVER,
    "postgresql": POSTGRES_DRIVER,
    "postgres": POSTGRES_DRIVER,
    POSTGRES_DRIVER: POSTGRES_DRIVER,
}


class DatabaseUrlError(ValueError):
    """DATABASE_URL names a database or driver TradingBrain cannot use."""


def safe_url(url: str | URL) -> str:
    """The URL with its password masked, for logs and errors."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL: say nothing of it rather than leak it
        return "<unparsable database URL>"


def normalise_url(url: str) -> str:
    """The async-driver form of a database URL (``postgres://`` -> ``postgresql+asyncpg://``)."""
    try:
        parsed = make_url(url)
    except Exception:
        raise DatabaseUrlError("DATABASE_URL is not a database URL") from None
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise DatabaseUrlError(
            f"unsupported database {safe_url(parsed)}: use sqlite+aiosqlite:// or "
            "postgresql+asyncpg:// (plain sqlite:// and postgresql:// are accepted too)"
        )
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def database_url(settings: Settings) -> str:
    """DATABASE_URL when set (normalised to an async driver), else the SQLite file of settings."""
    secret = settings.secrets.database_url
    if secret is not None and secret.get().strip():
        return normalise_url(secret.get().strip())
    return URL.create(SQLITE_DRIVER, database=settings.database.sqlite_path).render_as_string()


def create_engine(url: str, *, read_only: bool = False) -> AsyncEngine:
    """An async engine on ``url``; ``read_only`` makes the database refuse every write."""
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(parsed, read_only=read_only)
    else:
        engine = _postgres_engine(parsed, read_only=read_only)
    log.debug("database engine on %s (read_only=%s)", safe_url(parsed), read_only)
    return engine


def _postgres_engine(url: URL, *, read_only: bool) -> AsyncEngine:
    connect_args: dict[str, Any] = {}
    if read_only:
        connect_args["server_settings"] = {"default_transaction_read_only": "on"}
    # pool_pre_ping: a restarted server must not cost the first query after it.
    return _create_async_engine(url, connect_args=connect_args, pool_pre_ping=True, **_JSON_OPTIONS)


def _sqlite_engine(url: URL, *, read_only: bool) -> AsyncEngine:
    path = url.database
    not_a_file = not path or path == ":memory:" or path.startswith("file:")
    pragmas = [f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}"]
    if read_only:
        if not_a_file:
            raise DatabaseUrlError(f"a read-only engine needs a SQLite file: {safe_url(url)}")
        assert path is not None
        # mode=ro: SQLite itself refuses writes. WAL mode is a property of the file, set by the
        # writer, so the reader must not (and cannot) set it.
        url = url.set(
            database=Path(path).expanduser().resolve().as_uri(),
            query={"mode": "ro", "uri": "true"},
        )
        # A deferred BEGIN: the queries of one transaction see one snapshot of the file.
        begin = "BEGIN"
    else:
        if not not_a_file:
            assert path is not None
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # WAL lets the API read while the brain writes; NORMAL is durable enough under WAL
        # (a power cut may lose the last commits, never corrupt the file).
        pragmas += [
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA foreign_keys=ON",
        ]
        # The write lock from the start: a transaction that read first and then writes could
        # otherwise fail at once (SQLITE_BUSY_SNAPSHOT) when another connection wrote in
        # between, and migrations become atomic. Writer transactions are short.
        begin = "BEGIN IMMEDIATE"
    # SQLite takes one writer at a time, and a writer that finds the lock taken sleeps in the
    # busy handler in growing steps (up to 100 ms). One pooled connection per writer process
    # queues the brain's transactions and the outbox relay's in order instead.
    pool = {} if read_only else {"pool_size": 1, "max_overflow": 0}
    engine = _create_async_engine(url, **pool, **_JSON_OPTIONS)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Take transactions out of the driver's hands: it would begin them late (at the first
        # write) and never for reads. SQLAlchemy's "begin" event below starts them instead.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for pragma in pragmas:
                cursor.execute(pragma)
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(begin)

    return engine
