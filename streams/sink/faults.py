"""Telling a database that is away from work that went wrong: connections refused, lost or
unanswered, and locks held by a session that may have vanished, against a statement past its
timeout, a deadlock or a serialization failure (which the same work can meet again)."""

from __future__ import annotations

import psycopg2
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# SQLSTATEs that are the work's own trouble, not the database's absence
OWN_TROUBLE = {"57014": "statement timeout", "40P01": "deadlock", "40001": "serialization"}


def database_away(exc: BaseException) -> bool:
    """The database refused, lost or did not answer a connection, a pool had none to give, or
    a lock wait ran out (SQLite: the file stayed locked)."""
    original = getattr(exc, "orig", None) or exc
    if getattr(original, "pgcode", None) in OWN_TROUBLE:
        return False
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | PoolTimeout) or isinstance(
        original, psycopg2.OperationalError | psycopg2.InterfaceError
    )
