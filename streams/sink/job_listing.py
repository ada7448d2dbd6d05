"""The job listing: a tenant's jobs, newest first, by keyset pages, with the API's filters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Engine, and_, func, not_, or_, select

from streams.sink.jobs import CANCELLED, CANCELLING, JobRecord, record_of
from streams.sink.tables import jobs


def _status_is(status: str) -> ColumnElement[bool]:
    """The listing's status: `cancelling` is a job cancelled (the stop mark) that has not
    ended yet, which is then neither `queued` nor `active`."""
    recorded = func.coalesce(jobs.c.status, "queued")
    cancelled = func.coalesce(jobs.c.stopped, "") == CANCELLED
    if status == CANCELLING:
        return and_(cancelled, recorded.in_(("queued", "active")))
    if status in ("queued", "active"):
        return and_(recorded == status, not_(cancelled))
    return recorded == status


@dataclass(frozen=True)
class JobPage:
    jobs: list[JobRecord]
    more: bool  # there are older jobs after the last one


def list_jobs(
    engine: Engine,
    tenant: str | None,
    *,
    status: str | None,
    job_type: str | None,
    limit: int,
    after: tuple[datetime, str] | None,
    batch_id: str | None = None,
    id_prefix: str | None = None,
) -> JobPage:
    """A tenant's jobs (None: every tenant's), newest first, by keyset on (created_at, id)
    after `after`; only those of the producer's batch `batch_id`, and those whose id starts
    with `id_prefix`, when given."""
    if batch_id is not None and "\x00" in batch_id and engine.dialect.name == "postgresql":
        return JobPage([], False)  # no PostgreSQL text holds a NUL: no job has this batch
    query = select(jobs)
    if tenant is not None:
        query = query.where(jobs.c.tenant == tenant)
    if batch_id is not None:
        query = query.where(jobs.c.batch_id == batch_id)
    if id_prefix is not None:
        query = query.where(jobs.c.id.startswith(id_prefix, autoescape=True))
    if status is not None:
        query = query.where(_status_is(status))
    if job_type is not None:
        query = query.where(jobs.c.type == job_type)
    if after is not None:
        created, job_id = after
        query = query.where(
            or_(
                jobs.c.created_at < created,
                and_(jobs.c.created_at == created, jobs.c.id < job_id),
            )
        )
    query = query.order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit + 1)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return JobPage([record_of(row) for row in rows[:limit]], len(rows) > limit)
