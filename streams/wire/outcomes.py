"""Outcome events on `<app>.outcomes`: a job's status changes and counts, for systems that would
rather consume than poll the API (docs/upstream.md has the contract and a consumer).

Keyed by job id, so one job's events are in order on one partition. Delivered at least once:
after a worker restart or a rebalance an event may come again (same job, status and counts);
`final` is true on a completed, failed or cancelled job's event. A replay that reopens a
finished job makes it `active` again, then final again.

Two forms, one content: JSON (UTF-8, compact), or Avro single-object encoding (`C3 01`, the
8-byte little-endian CRC-64-AVRO fingerprint of `schemas/outcomes/job_outcome.v1.avsc`, the
binary body), told apart by the first bytes as on the input topics and named by the
`sluice-format` header. Which form a job's events take is decided upstream of here
(streams/intake/batches.py, the registry's `outcome_format`).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from streams.clock import iso_ms
from streams.config import settings
from streams.wire.codec import write_avro
from streams.wire.records import SINGLE_OBJECT, RecordSchema, RecordSchemas

SCHEMA = "sluice.JobOutcome/1"
OUTCOME_RECORD = "sluice.JobOutcome"
OUTCOMES_DIR = "outcomes"  # under SLUICE_SCHEMA_DIR

STATUS, BATCH_REUSED = "status", "batchReused"
JSON, AVRO = "json", "avro"
FORMS = (JSON, AVRO)
FORMAT_HEADER = "sluice-format"  # on every outcome message: json | avro


@lru_cache(maxsize=1)
def outcome_schema() -> RecordSchema:
    """The published outcome schema (parsed, with its fingerprint), read once per process."""
    return RecordSchemas(settings().schema_dir / OUTCOMES_DIR).newest[OUTCOME_RECORD]


def encode_outcome(body: dict[str, Any], form: str) -> bytes:
    """An event's bytes in `form` (json | avro)."""
    if form == AVRO:
        schema = outcome_schema()
        header = SINGLE_OBJECT + schema.fingerprint.to_bytes(8, "little")
        return header + write_avro(schema.parsed, body)
    return json.dumps(body, separators=(",", ":")).encode()


def outcome_headers(form: str) -> list[tuple[str, bytes]]:
    return [(FORMAT_HEADER, form.encode())]


def outcome_event(
    job_id: str,
    state: dict[str, Any],
    change: tuple[str | None, str, bool],
    at_ms: int,
    batch_id: str | None = None,
    form: str = JSON,
) -> bytes:
    """The event saying that `job_id`, whose progress state this is, changed status: `change`
    is (before, None when it is new; after; whether after is final)."""
    previous, status, final = change
    body: dict[str, Any] = {
        "schema": SCHEMA,
        "event": STATUS,
        "jobId": job_id,
        "batchId": batch_id,
        "type": state["type"],
        "tenant": state["tenant"],
        "status": status,
        "previousStatus": previous,
        "final": final,
        "at": iso_ms(at_ms),
        "counts": {
            "total": state["totalRecords"],
            "processed": state["records"],
            "successful": state["successful"],
            "failed": state["failed"],
            "skipped": state["skipped"],
            "created": state["created"],
            "updated": state["updated"],
            "deadLettered": state["deadLettered"],
        },
        "error": state["error"],
    }
    return encode_outcome(body, form)


def batch_reused_event(
    job_id: str,
    job_type: str,
    tenant: str,
    batch_id: str,
    status: str,
    at_ms: int,
    form: str = JSON,
) -> bytes:
    """Messages of a batch whose job had already finished were read: they were not applied
    (a finished job does not change); the producer learns it here rather than from silence."""
    body = {
        "schema": SCHEMA,
        "event": BATCH_REUSED,
        "jobId": job_id,
        "batchId": batch_id,
        "type": job_type,
        "tenant": tenant,
        "status": status,
        "previousStatus": None,
        "final": False,
        "at": iso_ms(at_ms),
        "counts": None,
        "error": (
            f"batch {batch_id!r} was produced again after its job was {status}: its new "
            "messages were not applied; use a new batch id"
        ),
    }
    return encode_outcome(body, form)
