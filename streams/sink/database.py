"""The SQLAlchemy engine: PostgreSQL in production and tests, a SQLite file by default."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url

from streams.sink.tables import create_tables


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while a worker writes; busy_timeout makes concurrent writers wait
    # instead of failing with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def driver_url(url: str) -> str:
    """`postgresql://` means psycopg2 here (SQLAlchemy 2.1 would pick psycopg 3 if installed):
    the COPY path of streams.sink.users speaks psycopg2."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, *, pool_size: int = 4, create: bool = True) -> Engine:
    """An engine for `url`, with Sluice's tables created (unless `create` is false)."""
    url = driver_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        # No pre-ping: it costs a round trip per chunk. A connection lost under a chunk raises,
        # SQLAlchemy drops it from the pool, and the chunk is retried (streams/processing/).
        engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)
    if create:
        create_tables(engine)
    return engine
