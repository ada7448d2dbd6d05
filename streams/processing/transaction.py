"""Apply one chunk exactly once in effect: ledger check, job-type writes, ledger row, one commit.

A job that was cancelled, or that met a failed record with stopOnError, is marked in the job
registry; every chunk checks the mark in its own transaction and is then skipped (its records
counted as skipped), so totals still add up.
"""

from __future__ import annotations

from sqlalchemy import Engine

from streams.exceptions import PoisonMessage
from streams.jobtypes import JOB_TYPES
from streams.models import Chunk, ChunkResult
from streams.sink import jobs as job_registry
from streams.sink import ledger, results


def apply_once(engine: Engine, chunk: Chunk) -> tuple[ChunkResult, bool]:
    """The chunk's result, and whether this call applied it (False: it was applied before)."""
    job_type = JOB_TYPES.get(chunk.job_type)
    if job_type is None:
        raise PoisonMessage(f"unknown job type {chunk.job_type!r}")
    with engine.begin() as connection:
        prior = ledger.find(connection, chunk.job_id, chunk.chunk_index)
        if prior is not None:
            return prior, False
        stopped = job_registry.stop_reason(connection, chunk.job_id)
        if stopped is not None:  # cancelled, or stopOnError met a failure: skip, and count it
            result = ChunkResult(records=len(chunk.records), stopped=stopped)
            for record in chunk.records:
                result.skip(record["row"], stopped)
        else:
            result = job_type.apply_chunk(connection, chunk)
            if result.failed and chunk.options.get("stopOnError"):
                job_registry.stop(connection, chunk.job_id, job_registry.STOPPED)
        ledger.record(connection, chunk, result)
        results.record(connection, chunk.job_id, result.outcomes)
    result.outcomes = []  # written: they need not travel back to the worker
    return result, True
