"""The job registry table: what was submitted, by whom, and how large it turned out."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    delete,
    func,
    or_,
    select,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite

from streams.sink.database import lock_wait
from streams.sink.tables import jobs

_JOB_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# Why a job's remaining chunks are skipped (`sluice_jobs.stopped`).
CANCELLED = "cancelled"
CANCELLING = "cancelling"  # a listed status: cancelled, not ended yet (api/views.py)
STOPPED = "stopped"  # stopOnError met a failed record
ABORTED = "aborted"  # its upload broke off

# Where a job came from (`sluice_jobs.origin`).
API = "api"  # submitted to the HTTP API
TOPIC = "topic"  # a producer's batch on an input topic


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
    status: str | None = None
    completed_at: datetime | None = None
    expires_at: datetime | None = None
    batch_id: str | None = None  # the producer's batch (topic jobs)
    origin: str | None = None  # api | topic; None on rows from before the column
    outcome_format: str | None = None  # json | avro; None: JSON, or a batch's not settled
    kept_state: dict[str, Any] | None = None  # its finished progress state (streams/kept.py)
    dead_letters_lost: int | None = None  # dead-lettered chunks the broker lost


def insert_job(
    engine: Engine,
    job_id: str,
    tenant: str,
    job_type: str,
    options: dict[str, Any],
    origin: str = API,
    *,
    wait: float | None = None,
) -> None:
    """Register a submitted job; a lock held longer than `wait` seconds fails it (lock_wait)."""
    with engine.begin() as connection, lock_wait(connection, wait):
        connection.execute(
            jobs.insert().values(_new_row(job_id, tenant, job_type, options, origin))
        )


def forget_job(engine: Engine, job_id: str, *, wait: float | None = None) -> None:
    """Remove the row of a submission that never became a job (Kafka did not take it)."""
    with engine.begin() as connection, lock_wait(connection, wait):
        remove_job(connection, job_id)


def _new_row(
    job_id: str, tenant: str, job_type: str, options: dict[str, Any], origin: str
) -> dict[str, Any]:
    return {
        "id": job_id,
        "tenant": tenant,
        "type": job_type,
        "options": json.dumps(options),
        "created_at": datetime.now(UTC),
        "origin": origin,
    }


def ensure_job(
    engine: Engine,
    job_id: str,
    tenant: str,
    job_type: str,
    options: dict[str, Any],
    batch_id: str | None,
    outcome_format: str | None = None,
) -> bool:
    """Register a topic job unless its row exists (INSERT ... ON CONFLICT (id) DO NOTHING: safe
    for any number of workers at once); True when this call made the row. An existing row is
    left as it is."""
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    row = _new_row(job_id, tenant, job_type, options, TOPIC)
    statement = (
        dialect.insert(jobs)
        .values(**row, batch_id=batch_id, outcome_format=outcome_format)
        .on_conflict_do_nothing(index_elements=[jobs.c.id])
        .returning(jobs.c.id)
    )
    with engine.begin() as connection:
        return connection.execute(statement).first() is not None


def settle_outcome_format(engine: Engine, job_id: str, outcome_format: str) -> str:
    """The form of the job's outcome events: `outcome_format` unless one is settled already
    (the first to settle it wins, on any worker: one UPDATE ... RETURNING)."""
    statement = (
        jobs.update()
        .where(jobs.c.id == job_id)
        .values(outcome_format=func.coalesce(jobs.c.outcome_format, outcome_format))
        .returning(jobs.c.outcome_format)
    )
    with engine.begin() as connection:
        settled = connection.execute(statement).scalar()
    return outcome_format if settled is None else str(settled)  # no row: nothing to disagree


def record_split(
    engine: Engine,
    job_id: str,
    total_records: int,
    total_chunks: int,
    *,
    wait: float | None = None,
) -> None:
    with engine.begin() as connection, lock_wait(connection, wait):
        connection.execute(
            jobs.update()
            .where(jobs.c.id == job_id)
            .values(
                total_records=total_records,
                total_chunks=total_chunks,
                split_completed_at=datetime.now(UTC),
            )
        )


def record_error(engine: Engine, job_id: str, error: str, *, wait: float | None = None) -> None:
    """The upload broke off: the job failed, and every chunk of it not applied yet is skipped
    (the stop mark), so nothing more of it is imported behind its `failed` status."""
    with engine.begin() as connection, lock_wait(connection, wait):
        connection.execute(jobs.update().where(jobs.c.id == job_id).values(error=error))
        stop(connection, job_id, ABORTED)


def record_of(row: Any) -> JobRecord:
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
        status=row.status,
        completed_at=row.completed_at,
        expires_at=row.expires_at,
        batch_id=row.batch_id,
        origin=row.origin,
        outcome_format=row.outcome_format,
        kept_state=json.loads(row.kept_state) if row.kept_state else None,
        dead_letters_lost=row.dead_letters_lost,
    )


def valid_job_id(job_id: str) -> bool:
    """Whether `job_id` is one Sluice gives (a UUID): nothing else can be in the registry."""
    return bool(_JOB_ID.fullmatch(job_id))


def get_job(engine: Engine, job_id: str) -> JobRecord | None:
    if not valid_job_id(job_id):
        return None
    with engine.connect() as connection:
        row = connection.execute(select(jobs).where(jobs.c.id == job_id)).first()
    return None if row is None else record_of(row)


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


def record_status(
    engine: Engine,
    job_id: str,
    status: str,
    completed_at: datetime | None,
    expires_at: datetime | None,
    totals: tuple[int | None, int | None] | None = None,
    kept: str | None = None,
) -> None:
    """The job's status as the progress agent last saw it (for listings and retention), its
    totals when known (the submission records them too, unless the database was away) and,
    once finished, its `kept` state (JSON, streams/kept.py). A job with an error (its upload
    broke off, the broker lost it) stays failed whatever a progress state says later."""
    values: dict[str, Any] = {
        "status": status,
        "completed_at": completed_at,
        "expires_at": expires_at,
        "kept_state": kept,
    }
    if totals is not None:
        values["total_records"], values["total_chunks"] = totals
    still_true = true() if status == "failed" else jobs.c.error.is_(None)
    with engine.begin() as connection:
        connection.execute(jobs.update().where(jobs.c.id == job_id, still_true).values(**values))


def expired_jobs(
    engine: Engine, now: datetime, failed_before: datetime, limit: int = 100
) -> list[str]:
    """Finished jobs whose retention time has passed; also jobs whose upload broke off (an
    error and no recorded status) created before `failed_before`."""
    broke_off = and_(
        jobs.c.expires_at.is_(None),
        jobs.c.error.is_not(None),
        jobs.c.created_at <= failed_before,
    )
    with engine.connect() as connection:
        return list(
            connection.scalars(
                select(jobs.c.id)
                .where(or_(jobs.c.expires_at <= now, broke_off))
                .order_by(jobs.c.created_at)
                .limit(limit)
            )
        )


def remove_job(connection: Connection, job_id: str) -> None:
    connection.execute(delete(jobs).where(jobs.c.id == job_id))
