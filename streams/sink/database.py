"""The SQLAlchemy engine: PostgreSQL in production and tests, a SQLite file by default."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url

from streams.sink.sessions import SessionLimits
from streams.sink.tables import create_tables

# How long a SQLite writer waits for the file's lock before "database is locked" (a 503).
SQLITE_BUSY_MS = 30_000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while a worker writes; busy_timeout makes concurrent writers wait
    # instead of failing with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    cursor.close()


@contextmanager
def lock_wait(connection: Connection, seconds: float | None) -> Iterator[None]:
    """Within this block a statement of `connection`'s transaction waits at most `seconds` for
    a lock (SQLite: the file's write lock; PostgreSQL: a row's or table's) and then fails as a
    database that is away (streams/sink/faults.py): for work a client is waiting on, where
    SQLITE_BUSY_MS or SLUICE_DB_LOCK_TIMEOUT would outlast its patience. None: no change."""
    if seconds is None:
        yield
        return
    ms = max(1, int(seconds * 1000))
    if connection.dialect.name != "sqlite":
        connection.exec_driver_sql(f"SET LOCAL lock_timeout = {ms}")  # ends with the transaction
        yield
        return
    connection.exec_driver_sql(f"PRAGMA busy_timeout={ms}")  # the connection's, not the block's
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")


def driver_url(url: str) -> str:
    """`postgresql://` means psycopg2 here (SQLAlchemy 2.1 would pick psycopg 3 if installed):
    the COPY path of streams.sink.users speaks psycopg2."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed.render_as_string(hide_password=False)


def make_engine(
    url: str,
    *,
    pool_size: int = 4,
    create: bool = True,
    limits: SessionLimits | None = None,
    name: str = "sluice",
) -> Engine:
    """An engine for `url`, with Sluice's tables created (unless `create` is false); every
    PostgreSQL session it opens is held to `limits` (streams/sink/sessions.py) and shows as
    `name` in pg_stat_activity."""
    parsed = make_url(driver_url(url))
    if parsed.drivername.startswith("sqlite"):
        engine = create_engine(parsed, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        url_options = parsed.query.get("options")
        connect_args: dict[str, object] = {"application_name": name}
        if limits is not None:
            parsed = parsed.difference_update_query(["options"])
            options = url_options if isinstance(url_options, str) else None
            connect_args |= limits.connect_args(options)
        # Pre-ping: a pooled connection that died while idle is replaced before use, not met
        # by a chunk or a status lookup (one round trip; a chunk takes tens of milliseconds).
        # A connection lost under a statement raises, SQLAlchemy drops it from the pool, and
        # the chunk is retried (streams/processing/).
        engine = create_engine(
            parsed,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_recycle=1800,
            pool_pre_ping=True,
            connect_args=connect_args,
        )
    if create:
        create_tables(engine)
    return engine
