"""Progress events on the wire (schemas/progress_event.v*.avsc): build and read them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from streams.clock import now_ms
from streams.models import Chunk, ChunkInfo, ChunkResult
from streams.wire.codec import PROGRESS_EVENT, codec

ACCEPTED = "sluice.JobAccepted"
SPLIT_COMPLETED = "sluice.SplitCompleted"
SPLIT_FAILED = "sluice.SplitFailed"
CHUNK_OUTCOME = "sluice.ChunkOutcome"
REPLAY_REQUESTED = "sluice.ReplayRequested"
RESULT_READY = "sluice.ResultReady"
JOB_REMOVED = "sluice.JobRemoved"
CHUNK_WAITING = "sluice.ChunkWaiting"
BATCH_ENDED = "sluice.BatchEnded"
STANDING_CLOSED = "sluice.StandingClosed"


def _encode(job_id: str, kind: str, body: dict[str, Any]) -> bytes:
    return codec().encode(PROGRESS_EVENT, {"jobId": job_id, "at": now_ms(), "event": (kind, body)})


def job_accepted(
    job_id: str,
    job_type: str,
    tenant: str,
    options: Mapping[str, Any],
    *,
    awaits_result: bool = False,
    upstream: bool = False,
    standing_day: str | None = None,
) -> bytes:
    """`upstream`: the job's records come from an input topic; its total is known only from its
    BatchEnded, or for the standing job of a day (`standing_day`) from its StandingClosed."""
    body = {
        "jobType": job_type,
        "tenant": tenant,
        "options": json.dumps(options),
        "awaitsResult": awaits_result,
        "upstream": upstream,
        "standingDay": standing_day,
    }
    return _encode(job_id, ACCEPTED, body)


def split_completed(
    job_id: str, total_records: int, total_chunks: int, unknown_columns: Iterable[str]
) -> bytes:
    body = {
        "totalRecords": total_records,
        "totalChunks": total_chunks,
        "unknownColumns": sorted(unknown_columns),
    }
    return _encode(job_id, SPLIT_COMPLETED, body)


def split_failed(job_id: str, reason: str) -> bytes:
    return _encode(job_id, SPLIT_FAILED, {"reason": reason})


def chunk_outcome(
    chunk: Chunk | ChunkInfo, result: ChunkResult, *, dead_lettered: bool = False
) -> bytes:
    return _encode(
        chunk.job_id,
        CHUNK_OUTCOME,
        {
            "chunkIndex": chunk.chunk_index,
            "partition": chunk.partition,
            "partitionSeq": chunk.partition_seq,
            "lane": chunk.lane,
            "records": result.records,
            "successful": result.successful,
            "failed": result.failed,
            "skipped": result.skipped,
            "created": result.created,
            "updated": result.updated,
            "deadLettered": dead_lettered,
            "stopped": result.stopped,
            "errors": [{"row": e.row, "field": e.field, "reason": e.reason} for e in result.errors],
        },
    )


def chunk_waiting(chunk: Chunk | ChunkInfo, reason: str, error: str) -> bytes:
    """The chunk cannot be applied now: what it writes to is away (`reason`); it waits."""
    body = {
        "chunkIndex": chunk.chunk_index,
        "partition": chunk.partition,
        "partitionSeq": chunk.partition_seq,
        "lane": chunk.lane,
        "reason": reason,
        "error": error,
    }
    return _encode(chunk.job_id, CHUNK_WAITING, body)


def replay_requested(chunk: Chunk | ChunkInfo, dead_letter_id: str) -> bytes:
    """Sent before a dead-lettered chunk is published again: its job is active until the
    chunk's new outcome arrives."""
    return _encode(
        chunk.job_id,
        REPLAY_REQUESTED,
        {
            "chunkIndex": chunk.chunk_index,
            "partition": chunk.partition,
            "partitionSeq": chunk.partition_seq,
            "lane": chunk.lane,
            "deadLetter": dead_letter_id,
        },
    )


def result_ready(
    job_id: str, basis: str, *, result: Mapping[str, Any] | None = None, error: str | None = None
) -> bytes:
    """A job's result (or why there is none), made from the counts `basis` names."""
    body = {
        "basis": basis,
        "result": None if result is None else json.dumps(result),
        "error": error,
    }
    return _encode(job_id, RESULT_READY, body)


def batch_ended(job_id: str, count: int) -> bytes:
    """An upstream batch's end message said it has `count` records: the job's total."""
    return _encode(job_id, BATCH_ENDED, {"count": count})


def standing_closed(job_id: str, day: str) -> bytes:
    """The standing job's day is over and every record of it read so far is counted: its total
    is what its progress has counted when this is folded (streams/agents/standing.py)."""
    return _encode(job_id, STANDING_CLOSED, {"day": day})


def job_removed(job_id: str, reason: str) -> bytes:
    """The job expired or was deleted: the progress agent drops its state."""
    return _encode(job_id, JOB_REMOVED, {"reason": reason})


class ProgressEvent(NamedTuple):
    job_id: str
    at_ms: int
    kind: str
    body: dict[str, Any]


def decode_event(data: bytes | None) -> ProgressEvent:
    """Read a progress event; unreadable input raises PoisonMessage."""
    record = codec().decode(PROGRESS_EVENT, data)
    kind, body = record["event"]
    return ProgressEvent(record["jobId"], record["at"], kind, body)
