"""What the database holds of jobs whose broker lost its data, and settling their registry rows.

When the broker's data is gone (streams/worker/broker_loss.py), the ledger (`sluice_chunks`)
still says which chunks of a job were applied and what they counted, and the results table holds
the failed rows of its dead-lettered chunks (`dead_chunk`). `applied` reads both; the caller
makes each job's kept state from them (streams/kept.py) and `settle` writes it. Everything runs in
the caller's transaction, together with the new broker mark (`replace_mark`), so the loss is
settled once, by one worker, or not at all.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite

from streams.sink.jobs import JobRecord, record_of
from streams.sink.tables import broker_marks, chunks, jobs, results

ERROR_SAMPLE = 10
LEDGER_COUNTS = ("records", "successful", "failed", "skipped", "created", "updated")


@dataclass(frozen=True)
class Applied:
    """A job's applied chunks (the ledger) and dead-lettered ones (their failed results)."""

    chunks: int
    counts: dict[str, int]  # LEDGER_COUNTS summed over the applied chunks
    first_applied: datetime | None
    errors: list[dict[str, Any]]  # the first failed records: row, field, reason
    dead_chunks: dict[int, int]  # dead-lettered chunk index → its records


def new_mark() -> str:
    return str(uuid.uuid4())


def remembered_mark(engine: Engine, app_id: str) -> str | None:
    with engine.connect() as connection:
        return connection.execute(
            select(broker_marks.c.mark).where(broker_marks.c.app_id == app_id)
        ).scalar()


def replace_mark(
    connection: Connection, app_id: str, old: str | None, new: str, lost: bool
) -> bool:
    """Remember `new` instead of `old` (none: the app's first); False when the registry no
    longer remembers `old` (another worker replaced it first)."""
    now = datetime.now(UTC)
    if old is None:
        dialect: Any = postgresql if connection.dialect.name == "postgresql" else sqlite
        row = {"app_id": app_id, "mark": new, "since": now, "lost_at": now if lost else None}
        statement = dialect.insert(broker_marks).values(**row).on_conflict_do_nothing()
        return bool(connection.execute(statement).rowcount)
    values: dict[str, Any] = {"mark": new, "since": now, **({"lost_at": now} if lost else {})}
    changed = connection.execute(
        broker_marks.update()
        .where(broker_marks.c.app_id == app_id, broker_marks.c.mark == old)
        .values(**values)
    )
    return bool(changed.rowcount)


def registered_before(connection: Connection, moment: datetime) -> list[JobRecord]:
    """Every job registered before `moment`, oldest first."""
    rows = connection.execute(
        select(jobs).where(jobs.c.created_at < moment).order_by(jobs.c.created_at)
    )
    return [record_of(row) for row in rows]


def applied(connection: Connection, job_id: str) -> Applied:
    ledger = connection.execute(
        select(
            func.count(),
            *(func.coalesce(func.sum(chunks.c[name]), 0) for name in LEDGER_COUNTS),
            func.min(chunks.c.applied_at),
        ).where(chunks.c.job_id == job_id)
    ).one()
    dead = connection.execute(
        select(results.c.dead_chunk, func.count())
        .where(results.c.job_id == job_id, results.c.dead_chunk.is_not(None))
        .group_by(results.c.dead_chunk)
    )
    errors = connection.execute(
        select(results.c.row_no, results.c.field, results.c.reason)
        .where(results.c.job_id == job_id, results.c.outcome == "failed")
        .order_by(results.c.row_no)
        .limit(ERROR_SAMPLE)
    )
    return Applied(
        chunks=int(ledger[0]),
        counts={name: int(value) for name, value in zip(LEDGER_COUNTS, ledger[1:-1], strict=True)},
        first_applied=ledger[-1],
        errors=[{"row": row, "field": field, "reason": reason} for row, field, reason in errors],
        dead_chunks={int(index): int(count) for index, count in dead},
    )


def settle(connection: Connection, job_id: str, values: dict[str, Any]) -> None:
    """Write what the loss settled of a job: any of status, error, completed_at, expires_at,
    kept_state, dead_letters_lost."""
    connection.execute(jobs.update().where(jobs.c.id == job_id).values(**values))
