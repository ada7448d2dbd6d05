"""How long recent jobs took, from the job registry: what `estimatedTime` is measured from."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, select

from streams.sink.tables import jobs

# (records, seconds from the job's registration to its completion)
Duration = tuple[int, float]


def recent_durations(
    engine: Engine, job_type: str, *, limit: int, min_records: int
) -> list[Duration]:
    """The last `limit` completed jobs of `job_type` submitted to the API with at least
    `min_records` records: their size and how long they took, newest first. Topic jobs are left
    out: their pace is their producer's."""
    query = (
        select(jobs.c.total_records, jobs.c.created_at, jobs.c.completed_at)
        .where(
            jobs.c.type == job_type,
            jobs.c.status == "completed",
            jobs.c.origin == "api",
            jobs.c.total_records >= min_records,
            jobs.c.completed_at.is_not(None),
        )
        .order_by(jobs.c.completed_at.desc())
        .limit(limit)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [(int(total), _seconds(created, completed)) for total, created, completed in rows]


def _seconds(start: datetime, end: datetime) -> float:
    if start.tzinfo is None or end.tzinfo is None:  # SQLite hands back naive UTC times
        start, end = start.replace(tzinfo=None), end.replace(tzinfo=None)
    return (end - start).total_seconds()
