"""Apply one chunk exactly once in effect: ledger check, job-type writes, ledger row, one commit."""

from __future__ import annotations

from sqlalchemy import Engine

from streams.exceptions import PoisonMessage
from streams.jobtypes import JOB_TYPES
from streams.jobtypes.base import Chunk, ChunkResult
from streams.sink import ledger


def apply(engine: Engine, chunk: Chunk) -> tuple[ChunkResult, bool]:
    """The chunk's result, and whether this call applied it (False: it was applied before)."""
    job_type = JOB_TYPES.get(chunk.job_type)
    if job_type is None:
        raise PoisonMessage(f"unknown job type {chunk.job_type!r}")
    with engine.begin() as connection:
        prior = ledger.find(connection, chunk.job_id, chunk.chunk_index)
        if prior is not None:
            return prior, False
        result = job_type.apply_chunk(connection, chunk)
        ledger.record(connection, chunk, result)
    return result, True
