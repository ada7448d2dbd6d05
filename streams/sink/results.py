"""Every record's outcome: written set-based in its chunk's transaction, read by keyset pages.

PostgreSQL gets one `COPY` per chunk (the fast path). Rows a dead-lettered chunk left as
`failed` are replaced when the chunk is applied after a replay: the COPY then meets their
primary keys, so it runs inside a savepoint and, on that conflict only, the chunk's rows are
deleted and copied again.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import psycopg2
from sqlalchemy import Connection, Engine, delete, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from streams.models import RecordOutcome
from streams.sink.copy import copy_lines, text_value
from streams.sink.tables import results

_REPLACED = ("outcome", "entity_id", "field", "reason", "original")

_TARGET = "sluice_results (job_id, row_no, outcome, entity_id, field, reason, original)"
STATUS_OUTCOMES = {
    "successful": ("created", "updated"),
    "failed": ("failed",),
    "skipped": ("skipped",),
}
SAMPLE_ROWS = 5
MAX_GROUPS = 100


def _line(job_id: str, o: RecordOutcome) -> str:
    entity = "\\N" if o.entity_id is None else str(o.entity_id)
    return (
        f"{job_id}\t{o.row}\t{o.outcome}\t{entity}\t{text_value(o.field)}\t"
        f"{text_value(o.reason)}\t{text_value(o.original)}\n"
    )


def record(connection: Connection, job_id: str, outcomes: Sequence[RecordOutcome]) -> None:
    """Write a chunk's outcomes in the caller's transaction (replacing earlier ones)."""
    if not outcomes:
        return
    if connection.dialect.name != "postgresql":
        rows = [_values(job_id, o) for o in outcomes]
        statement = sqlite.insert(results)
        statement = statement.on_conflict_do_update(
            index_elements=[results.c.job_id, results.c.row_no],
            set_={**{c: statement.excluded[c] for c in _REPLACED}, "dead_chunk": None},
        )
        connection.execute(statement, rows)
        return
    lines = "".join([_line(job_id, o) for o in outcomes])
    savepoint = connection.begin_nested()
    try:
        copy_lines(connection, _TARGET, lines)
    except (IntegrityError, psycopg2.IntegrityError):  # COPY raises the driver's own error
        savepoint.rollback()
        replace_rows(connection, job_id, [o.row for o in outcomes])
        copy_lines(connection, _TARGET, lines)
    else:
        savepoint.commit()


def recorded_rows(
    connection: Connection, job_id: str, rows: Sequence[int], chunk_index: int
) -> set[int]:
    """Those of `rows` that already have an outcome in the job, other than the failures chunk
    `chunk_index` left when it was dead-lettered (applied now, it replaces them)."""
    if not rows:
        return set()
    found = connection.execute(
        select(results.c.row_no).where(
            results.c.job_id == job_id,
            results.c.row_no.in_(list(rows)),
            or_(results.c.dead_chunk.is_(None), results.c.dead_chunk != chunk_index),
        )
    )
    return set(found.scalars())


def replace_rows(connection: Connection, job_id: str, rows: Sequence[int]) -> None:
    connection.execute(
        delete(results).where(results.c.job_id == job_id, results.c.row_no.in_(list(rows)))
    )


def _values(job_id: str, o: RecordOutcome) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "row_no": o.row,
        "outcome": o.outcome,
        "entity_id": o.entity_id,
        "field": o.field,
        "reason": o.reason,
        "original": o.original,
    }


def record_dead_lettered(
    engine: Engine, job_id: str, chunk_index: int, rows: Sequence[int], reason: str
) -> list[int]:
    """A dead-lettered chunk's records are failed until a replay applies them; rows already
    there (a chunk dead-lettered again, or a record another chunk holds too) stay as they are.
    The rows whose outcome is now this chunk's failure: the records it counts as failed (an
    intake chunk may hold a record read again, which another chunk has counted already)."""
    values = [
        {
            "job_id": job_id,
            "row_no": row,
            "outcome": "failed",
            "reason": reason,
            "dead_chunk": chunk_index,
        }
        for row in rows
    ]
    if not values:
        return []
    dialect: Any = postgresql if engine.dialect.name == "postgresql" else sqlite
    with engine.begin() as connection:
        connection.execute(dialect.insert(results).on_conflict_do_nothing(), values)
        ours = connection.execute(
            select(results.c.row_no).where(
                results.c.job_id == job_id,
                results.c.row_no.in_(list(rows)),
                results.c.dead_chunk == chunk_index,
            )
        )
        return sorted(ours.scalars())


# -- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResultPage:
    rows: list[Any]  # (row_no, outcome, entity_id, field, reason), in row order
    next_after: int | None  # the last row of this page, when there may be more


def page(engine: Engine, job_id: str, status: str | None, after: int, limit: int) -> ResultPage:
    """Up to `limit` outcomes with row > `after`, in row order (keyset: no OFFSET scans)."""
    query = (
        select(
            results.c.row_no,
            results.c.outcome,
            results.c.entity_id,
            results.c.field,
            results.c.reason,
        )
        .where(results.c.job_id == job_id, results.c.row_no > after)
        .order_by(results.c.row_no)
        .limit(limit + 1)
    )
    if status is not None:
        query = query.where(results.c.outcome.in_(STATUS_OUTCOMES[status]))
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    page_rows = list(rows[:limit])
    return ResultPage(page_rows, page_rows[-1].row_no if len(rows) > limit else None)


def failed_batches(engine: Engine, job_id: str, batch: int = 1000) -> Iterator[list[Any]]:
    """The failed records of a job in row order, a batch at a time (bounded memory)."""
    after = 0
    while True:
        with engine.connect() as connection:
            rows = connection.execute(
                select(results.c.row_no, results.c.field, results.c.reason, results.c.original)
                .where(
                    results.c.job_id == job_id,
                    results.c.outcome == "failed",
                    results.c.row_no > after,
                )
                .order_by(results.c.row_no)
                .limit(batch)
            ).all()
        if rows:
            yield list(rows)
        if len(rows) < batch:
            return
        after = rows[-1].row_no


class ErrorGroup(NamedTuple):
    field: str | None
    reason: str | None
    size: int
    sample_rows: list[int]


def error_groups(engine: Engine, job_id: str) -> list[ErrorGroup]:
    """Failures grouped by field and reason, most frequent first, with a few sample rows."""
    where = (results.c.job_id == job_id, results.c.outcome == "failed")
    with engine.connect() as connection:
        groups = connection.execute(
            select(results.c.field, results.c.reason, func.count().label("count"))
            .where(*where)
            .group_by(results.c.field, results.c.reason)
            .order_by(func.count().desc(), results.c.field, results.c.reason)
            .limit(MAX_GROUPS)
        ).all()
        answer = []
        for field, reason, count in groups:
            same = (
                results.c.field.is_(None) if field is None else results.c.field == field,
                results.c.reason.is_(None) if reason is None else results.c.reason == reason,
            )
            sample = connection.scalars(
                select(results.c.row_no)
                .where(*where, *same)
                .order_by(results.c.row_no)
                .limit(SAMPLE_ROWS)
            ).all()
            answer.append(ErrorGroup(field, reason, count, list(sample)))
    return answer


def remove_job(connection: Connection, job_id: str) -> None:
    connection.execute(delete(results).where(results.c.job_id == job_id))
