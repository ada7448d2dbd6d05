"""Upstream batches whose job was removed: a batch id is used once.

Retention (or a DELETE) removes a finished job's registry row with everything else it kept. For a
job an upstream batch made, a row here stays behind (a few dozen bytes, kept for good), so that
the batch produced again, however much later, is answered with a `batchReused` outcome event
(streams/intake/batches.py) instead of being applied as a new job under the same id.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, literal, select
from sqlalchemy.dialects import postgresql, sqlite

from streams.sink.tables import jobs, removed_batches


def remember_removed(connection: Connection, job_id: str) -> None:
    """Before the job's registry row goes: keep its batch id, if a batch made it."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    made_by_a_batch = select(
        jobs.c.id, jobs.c.tenant, jobs.c.batch_id, literal(datetime.now(UTC))
    ).where(jobs.c.id == job_id, jobs.c.batch_id.is_not(None))
    statement = (
        dialect.insert(removed_batches)
        .from_select(["job_id", "tenant", "batch_id", "removed_at"], made_by_a_batch)
        .on_conflict_do_nothing(index_elements=[removed_batches.c.job_id])
    )
    connection.execute(statement)


def was_removed(engine: Engine, job_id: str) -> bool:
    with engine.connect() as connection:
        found = connection.execute(
            select(removed_batches.c.job_id).where(removed_batches.c.job_id == job_id)
        ).first()
    return found is not None
