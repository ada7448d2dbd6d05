"""The chunk record on the wire: Chunk <-> Avro bytes (schemas/chunk.v*.avsc)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from streams.codec import CHUNK, codec
from streams.exceptions import PoisonMessage
from streams.jobtypes.base import Chunk


def encode_chunk(chunk: Chunk, *, submitted_at_ms: int = 0) -> bytes:
    return codec().encode(
        CHUNK,
        {
            "jobId": chunk.job_id,
            "jobType": chunk.job_type,
            "tenant": chunk.tenant,
            "chunkIndex": chunk.chunk_index,
            "partition": chunk.partition,
            "partitionSeq": chunk.partition_seq,
            "options": json.dumps(chunk.options, separators=(",", ":")),
            "records": chunk.records,
            "attempt": chunk.attempt,
            "submittedAt": submitted_at_ms,
        },
    )


def decode_chunk(data: bytes | None) -> Chunk:
    """Decode a chunk of any schema version; unreadable input raises PoisonMessage."""
    record = codec().decode(CHUNK, data)
    try:
        options = json.loads(record["options"])
    except ValueError:
        raise PoisonMessage("chunk options are not JSON") from None
    if not isinstance(options, dict):
        raise PoisonMessage("chunk options are not a JSON object")
    return Chunk(
        job_id=record["jobId"],
        job_type=record["jobType"],
        tenant=record["tenant"],
        chunk_index=record["chunkIndex"],
        partition=record["partition"],
        partition_seq=record["partitionSeq"],
        options=options,
        records=record["records"],
        attempt=record["attempt"],
    )


def raw_record(row: int, fields: Mapping[str, Any] | None, error: str | None) -> dict[str, Any]:
    """One record of a chunk as the Avro schema wants it."""
    return {"row": row, "fields": fields, "error": error}


def chunk_header(chunk: Chunk) -> Sequence[tuple[str, bytes]]:
    """Kafka headers that let people read a chunk's identity without decoding it."""
    return (
        ("sluice-job-id", chunk.job_id.encode()),
        ("sluice-chunk-index", str(chunk.chunk_index).encode()),
    )
