"""Outcome events on `<app>.outcomes`: a job's status changes and counts, for systems that would
rather consume than poll the API (docs/upstream.md has the contract and a consumer).

JSON, keyed by job id, so one job's events are in order on one partition. Delivered at least
once: after a worker restart or a rebalance an event may come again (same job, status and
counts); `final` is true on a completed, failed or cancelled job's event. A replay that reopens a
finished job makes it `active` again, then final again.
"""

from __future__ import annotations

import json
from typing import Any

from streams.clock import iso_ms

SCHEMA = "sluice.JobOutcome/1"


STATUS, BATCH_REUSED = "status", "batchReused"


def outcome_event(
    job_id: str,
    state: dict[str, Any],
    change: tuple[str | None, str, bool],
    at_ms: int,
    batch_id: str | None = None,
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
    return json.dumps(body, separators=(",", ":")).encode()


def batch_reused_event(
    job_id: str, job_type: str, tenant: str, batch_id: str, status: str, at_ms: int
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
        "final": False,
        "at": iso_ms(at_ms),
        "error": (
            f"batch {batch_id!r} was produced again after its job was {status}: its new "
            "messages were not applied; use a new batch id"
        ),
    }
    return json.dumps(body, separators=(",", ":")).encode()
