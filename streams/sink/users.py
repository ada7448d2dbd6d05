"""Set-based writes to the `users` table, one statement per chunk.

PostgreSQL: the chunk is COPYed into a session-local staging table and moved with one
`INSERT … SELECT … ON CONFLICT` (per-row statements cost ~200 µs of server CPU each; this is
~15× cheaper, shared/BASELINES.md). Rows go in email order so two writers never deadlock.
Other databases (SQLite): one multi-row statement through SQLAlchemy.

A user's identity is (tenant, email): every function reads and writes one tenant's rows only.
Callers pass each identity at most once per call: `ON CONFLICT DO UPDATE` cannot touch a row
twice in one statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, select, text
from sqlalchemy.dialects import sqlite

from streams.sink.copy import ESCAPES, NULL, copy_lines
from streams.sink.tables import users


class UserRow(Protocol):
    @property
    def email(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def country(self) -> str | None: ...
    @property
    def age(self) -> int | None: ...
    @property
    def signup_ts(self) -> datetime | None: ...


_STAGE = "sluice_stage_users"
_COLUMNS = "email, name, country, age, signup_ts"
_REPLACE = (
    "DO UPDATE SET name = EXCLUDED.name, country = EXCLUDED.country, age = EXCLUDED.age, "
    "signup_ts = EXCLUDED.signup_ts, batch_job_id = EXCLUDED.batch_job_id, updated_at = now() "
    "RETURNING email, id, (xmax = 0) AS inserted"
)


def _copy_line(r: UserRow) -> str:
    """One row in COPY's text format (runs once per record: no generic per-value dispatch)."""
    esc = ESCAPES
    country = NULL if r.country is None else r.country.translate(esc)
    age = NULL if r.age is None else str(r.age)
    signup = NULL if r.signup_ts is None else r.signup_ts.isoformat()
    return f"{r.email.translate(esc)}\t{r.name.translate(esc)}\t{country}\t{age}\t{signup}\n"


def _stage(connection: Connection, rows: Sequence[UserRow]) -> None:
    # Every time, not once per connection: a CREATE in a transaction that rolls back (a failed
    # chunk) is undone, and a flag kept on the connection would outlive the table.
    connection.execute(
        text(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} (email text, name text, "
            "country text, age smallint, signup_ts timestamptz) ON COMMIT DELETE ROWS"
        )
    )
    copy_lines(connection, f"{_STAGE} ({_COLUMNS})", "".join([_copy_line(r) for r in rows]))


def _insert_staged(
    connection: Connection, tenant: str, rows: Sequence[UserRow], job_id: str, on_conflict: str
) -> Any:
    """Stage the rows, then move them with one `INSERT … SELECT … ON CONFLICT (tenant, email)`."""
    _stage(connection, rows)
    return connection.execute(
        text(
            f"INSERT INTO users (tenant, {_COLUMNS}, batch_job_id) "
            f"SELECT :tenant, {_COLUMNS}, :job FROM {_STAGE} ORDER BY email "
            f"ON CONFLICT (tenant, email) {on_conflict}"
        ),
        {"tenant": tenant, "job": job_id},
    )


def insert_new(
    connection: Connection, tenant: str, rows: Sequence[UserRow], job_id: str
) -> dict[str, int]:
    """Insert rows whose email the tenant has no user with yet; returns the ids of those
    inserted."""
    if not rows:
        return {}
    if connection.dialect.name == "postgresql":
        result = _insert_staged(connection, tenant, rows, job_id, "DO NOTHING RETURNING email, id")
        return {email: user_id for email, user_id in result}
    existing = ids_of(connection, tenant, [r.email for r in rows])
    fresh = [_values(tenant, r, job_id) for r in rows if r.email not in existing]
    if fresh:
        connection.execute(sqlite.insert(users).on_conflict_do_nothing(), fresh)
    return ids_of(connection, tenant, [v["email"] for v in fresh])


def upsert(
    connection: Connection, tenant: str, rows: Sequence[UserRow], job_id: str
) -> tuple[dict[str, int], set[str]]:
    """Insert or replace every row of the tenant; returns every row's id, and the emails that
    were new (the rest were updated)."""
    if not rows:
        return {}, set()
    if connection.dialect.name == "postgresql":
        result = _insert_staged(connection, tenant, rows, job_id, _REPLACE)
        ids, inserted = {}, set()
        for email, user_id, new in result:
            ids[email] = user_id
            if new:
                inserted.add(email)
        return ids, inserted
    existing = ids_of(connection, tenant, [r.email for r in rows])
    statement = sqlite.insert(users)
    statement = statement.on_conflict_do_update(
        index_elements=[users.c.tenant, users.c.email],
        set_={
            "name": statement.excluded.name,
            "country": statement.excluded.country,
            "age": statement.excluded.age,
            "signup_ts": statement.excluded.signup_ts,
            "batch_job_id": statement.excluded.batch_job_id,
            "updated_at": statement.excluded.updated_at,
        },
    )
    connection.execute(statement, [_values(tenant, r, job_id) for r in rows])
    return ids_of(connection, tenant, [r.email for r in rows]), {
        r.email for r in rows if r.email not in existing
    }


def ids_of(connection: Connection, tenant: str, emails: Sequence[str]) -> dict[str, int]:
    """The ids of the tenant's users among `emails`."""
    if not emails:
        return {}
    found = connection.execute(
        select(users.c.email, users.c.id).where(
            users.c.tenant == tenant, users.c.email.in_(list(emails))
        )
    )
    return {email: user_id for email, user_id in found}


def _values(tenant: str, row: UserRow, job_id: str) -> dict[str, Any]:
    now = datetime.now().astimezone()
    return {
        "tenant": tenant,
        "email": row.email,
        "name": row.name,
        "country": row.country,
        "age": row.age,
        "signup_ts": row.signup_ts,
        "batch_job_id": job_id,
        "created_at": now,
        "updated_at": now,
    }


__all__ = ["ids_of", "insert_new", "upsert"]
