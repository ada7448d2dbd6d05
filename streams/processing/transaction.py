"""Apply one chunk exactly once in effect: ledger check, job-type writes, ledger row, one commit.

A job that was cancelled, or that met a failed record with stopOnError, is marked in the job
registry; every chunk checks the mark in its own transaction and is then skipped (its records
counted as skipped), so totals still add up.

A chunk whose (job, chunk index) is in the ledger is a redelivery when what it would apply has
the ledger row's digest (or the row has none: written before digests were kept); it gets the
stored outcome. With another digest it is a different chunk reusing the pair: ChunkConflict,
dead-lettered, the stored outcome untouched.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import Engine

from streams.exceptions import ChunkConflict, PoisonMessage
from streams.jobtypes import JOB_TYPES
from streams.models import Chunk, ChunkResult
from streams.sink import jobs as job_registry
from streams.sink import ledger, results

MAX_ROW = 2**63  # sluice_results.row_no is a bigint


def apply_once(engine: Engine, chunk: Chunk) -> tuple[ChunkResult, bool]:
    """The chunk's result, and whether this call applied it (False: it was applied before)."""
    job_type = JOB_TYPES.get(chunk.job_type)
    if job_type is None:
        known = ", ".join(sorted(JOB_TYPES))
        raise PoisonMessage(f"jobType: unknown job type {chunk.job_type[:64]!r} (known: {known})")
    check_rows(chunk)
    digest = ledger.content_digest(chunk)
    with engine.begin() as connection:
        prior = ledger.find(connection, chunk.job_id, chunk.chunk_index)
        if prior is not None:
            if prior.digest is not None and prior.digest != digest:
                raise ChunkConflict(
                    f"chunk {chunk.chunk_index} of job {chunk.job_id} was already applied with "
                    "different content; this one is not a redelivery and was not applied"
                )
            return prior.result, False
        if chunk.lane >= 0:
            # an intake chunk: a record read again (a producer's retry with the same seq, or
            # the intake re-reading after a crash) already has its result; it is not a second
            # record, and is neither applied nor counted again. The failures this chunk left
            # when it was dead-lettered are not results: a replay applies those records
            recorded = results.recorded_rows(
                connection, chunk.job_id, _rows(chunk), chunk.chunk_index
            )
            if recorded:
                fresh = [r for r in chunk.records if r["row"] not in recorded]
                chunk = dataclasses.replace(chunk, records=fresh)
        stopped = job_registry.stop_reason(connection, chunk.job_id)
        if stopped is not None:  # cancelled, or stopOnError met a failure: skip, and count it
            result = ChunkResult(records=len(chunk.records), stopped=stopped)
            for record in chunk.records:
                result.skip(record["row"], stopped)
        else:
            result = job_type.apply_chunk(connection, chunk)
            if result.failed and chunk.options.get("stopOnError"):
                job_registry.stop(connection, chunk.job_id, job_registry.STOPPED)
        ledger.record(connection, chunk, result, digest)
        results.record(connection, chunk.job_id, result.outcomes)
    result.outcomes = []  # written: they need not travel back to the worker
    return result, True


def _rows(chunk: Chunk) -> list[int]:
    return [record["row"] for record in chunk.records]


def check_rows(chunk: Chunk) -> None:
    """Row numbers name each record's outcome in the job's results (keyed by job and row): a
    chunk whose rows are not positive and distinct cannot be reported record by record."""
    seen: set[int] = set()
    for record in chunk.records:
        row = record["row"]
        if not 0 < row < MAX_ROW:
            raise PoisonMessage(f"records: row {row} is out of range (1 to 2^63-1)")
        if row in seen:
            raise PoisonMessage(f"records: row {row} appears twice in the chunk")
        seen.add(row)
