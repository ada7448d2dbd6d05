"""The ledger of applied chunks: what makes applying a chunk idempotent.

A chunk's ledger row is written in the same transaction as its sink writes. A redelivered chunk
(worker crash before the offset commit, rebalance, replay) finds its row and gets the stored
outcome back instead of being applied again.

The row also keeps a digest of what was applied (`content_digest`), so that a chunk reusing a
(job, chunk index) pair with other content is not taken for a redelivery. The digest covers what
a redelivery or a replay sends again unchanged: job type, tenant, partition and sequence, lane
(intake chunks only: the digests of split chunks, lane -1, are those written before lanes),
options and every record (row, fields, error). It leaves out what may legitimately change
between sends of the same chunk: the `attempt` counter, `submittedAt`, Kafka headers, and the
encoding (schema version, column order), as it is taken over the decoded chunk.
"""

from __future__ import annotations

import hashlib
import json
from typing import NamedTuple

from sqlalchemy import Connection, select

from streams.models import Chunk, ChunkResult, RecordFailure
from streams.sink.tables import chunks

_canonical = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str
).encode


class Entry(NamedTuple):
    """A ledger row: the stored outcome, and the digest of what was applied (None: a row
    written before digests were kept)."""

    result: ChunkResult
    digest: str | None


def content_digest(chunk: Chunk) -> str:
    """SHA-256 (hex) of what a chunk applies; equal for every resend of the same chunk."""
    head = [chunk.job_type, chunk.tenant, chunk.partition, chunk.partition_seq, chunk.options]
    if chunk.lane >= 0:  # an intake chunk; a split chunk's digest stays what it always was
        head.append(chunk.lane)
    records = [[r["row"], r["fields"], r["error"]] for r in chunk.records]
    return hashlib.sha256(_canonical([head, records]).encode()).hexdigest()


def find(connection: Connection, job_id: str, chunk_index: int) -> Entry | None:
    row = connection.execute(
        select(chunks).where(chunks.c.job_id == job_id, chunks.c.chunk_index == chunk_index)
    ).first()
    if row is None:
        return None
    result = ChunkResult(
        records=row.records,
        successful=row.successful,
        failed=row.failed,
        skipped=row.skipped,
        created=row.created,
        updated=row.updated,
        errors=[RecordFailure(**e) for e in json.loads(row.errors)],
        stopped=row.stopped,
    )
    return Entry(result, row.digest)


def record(connection: Connection, chunk: Chunk, result: ChunkResult, digest: str) -> None:
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
            digest=digest,
        )
    )
