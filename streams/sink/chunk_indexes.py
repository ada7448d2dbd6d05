"""Chunk indexes of intake jobs (the input topics' records): blocks reserved in the job's
registry row (`sluice_jobs.chunks_allocated`), so every intake process of every worker takes
indexes no other takes (streams/intake/splitter.py)."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from streams.sink.tables import jobs

MAX_CHUNK_INDEX = 2**31 - 1  # sluice_chunks.chunk_index is an INTEGER


class UnknownJob(LookupError):
    """The job has no registry row."""


class ChunkIndexesExhausted(OverflowError):
    """A job's chunk indexes would pass MAX_CHUNK_INDEX."""


def allocate_chunks(engine: Engine, job_id: str, count: int) -> int:
    """Reserve `count` consecutive chunk indexes of the job and return the first: one UPDATE
    ... RETURNING, so concurrent callers (any worker) get disjoint blocks, and a block once
    reserved is never given again, even if its caller crashes before using it."""
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
    allocated = func.coalesce(jobs.c.chunks_allocated, 0)
    statement = (
        jobs.update()
        .where(jobs.c.id == job_id, allocated + count <= MAX_CHUNK_INDEX + 1)
        .values(chunks_allocated=allocated + count)
        .returning(jobs.c.chunks_allocated)
    )
    with engine.begin() as connection:
        end = connection.execute(statement).scalar()
        if end is not None:
            return int(end) - count
        taken = connection.execute(select(allocated).where(jobs.c.id == job_id)).first()
    if taken is None:
        raise UnknownJob(f"no job {job_id!r} in the registry to allocate chunks of")
    raise ChunkIndexesExhausted(
        f"job {job_id}: {count} more chunk indexes after {taken[0]} would pass {MAX_CHUNK_INDEX}"
    )
