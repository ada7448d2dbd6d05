"""The job registry table: what was submitted, by whom, and how large it turned out."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, select

from streams.sink.tables import jobs


@dataclass(frozen=True)
class JobRecord:
    id: str
    tenant: str
    type: str
    options: dict[str, Any]
    created_at: datetime
    total_records: int | None
    total_chunks: int | None
    error: str | None
    stopped: str | None


def insert_job(
    engine: Engine, job_id: str, tenant: str, job_type: str, options: dict[str, Any]
) -> None:
    with engine.begin() as connection:
        connection.execute(
            jobs.insert().values(
                id=job_id,
                tenant=tenant,
                type=job_type,
                options=json.dumps(options),
                created_at=datetime.now(UTC),
            )
        )


def record_split(engine: Engine, job_id: str, total_records: int, total_chunks: int) -> None:
    with engine.begin() as connection:
        connection.execute(
            jobs.update()
            .where(jobs.c.id == job_id)
            .values(
                total_records=total_records,
                total_chunks=total_chunks,
                split_completed_at=datetime.now(UTC),
            )
        )


def record_error(engine: Engine, job_id: str, error: str) -> None:
    with engine.begin() as connection:
        connection.execute(jobs.update().where(jobs.c.id == job_id).values(error=error))


def get_job(engine: Engine, job_id: str) -> JobRecord | None:
    with engine.connect() as connection:
        row = connection.execute(select(jobs).where(jobs.c.id == job_id)).first()
    if row is None:
        return None
    return JobRecord(
        id=row.id,
        tenant=row.tenant,
        type=row.type,
        options=json.loads(row.options),
        created_at=row.created_at,
        total_records=row.total_records,
        total_chunks=row.total_chunks,
        error=row.error,
        stopped=row.stopped,
    )


def stop_reason(connection: Connection, job_id: str) -> str | None:
    """Why the job's remaining chunks are to be skipped (cancelled, stopped), if they are."""
    return connection.execute(select(jobs.c.stopped).where(jobs.c.id == job_id)).scalar()


def stop(connection: Connection, job_id: str, reason: str) -> bool:
    """Mark the job stopped unless it already is; True when this call marked it."""
    result = connection.execute(
        jobs.update().where(jobs.c.id == job_id, jobs.c.stopped.is_(None)).values(stopped=reason)
    )
    return bool(result.rowcount)


def stop_job(engine: Engine, job_id: str, reason: str) -> bool:
    with engine.begin() as connection:
        return stop(connection, job_id, reason)
