"""The ledger of applied chunks: what makes applying a chunk idempotent.

A chunk's ledger row is written in the same transaction as its sink writes. A redelivered chunk
(worker crash before the offset commit, rebalance, replay) finds its row and gets the stored
outcome back instead of being applied again.
"""

from __future__ import annotations

import json

from sqlalchemy import Connection, select

from streams.models import Chunk, ChunkResult, RecordFailure
from streams.sink.tables import chunks


def find(connection: Connection, job_id: str, chunk_index: int) -> ChunkResult | None:
    row = connection.execute(
        select(chunks).where(chunks.c.job_id == job_id, chunks.c.chunk_index == chunk_index)
    ).first()
    if row is None:
        return None
    return ChunkResult(
        records=row.records,
        successful=row.successful,
        failed=row.failed,
        skipped=row.skipped,
        created=row.created,
        updated=row.updated,
        errors=[RecordFailure(**e) for e in json.loads(row.errors)],
        stopped=row.stopped,
    )


def record(connection: Connection, chunk: Chunk, result: ChunkResult) -> None:
    connection.execute(
        chunks.insert().values(
            job_id=chunk.job_id,
            chunk_index=chunk.chunk_index,
            partition=chunk.partition,
            partition_seq=chunk.partition_seq,
            records=result.records,
            successful=result.successful,
            failed=result.failed,
            skipped=result.skipped,
            created=result.created,
            updated=result.updated,
            stopped=result.stopped,
            errors=json.dumps(
                [{"row": e.row, "field": e.field, "reason": e.reason} for e in result.errors]
            ),
        )
    )
