"""Outcome events: when a job's status changes, and what the event says."""

from __future__ import annotations

import json

import pytest

from streams.agents.outcomes import status_change
from streams.progress import apply_event
from streams.wire.events import ACCEPTED, CHUNK_OUTCOME, SPLIT_COMPLETED
from streams.wire.outcomes import SCHEMA, outcome_event

pytestmark = pytest.mark.unit
JOB = "0b8e2f9c-1d2e-4f3a-8b4c-5d6e7f8a9b0c"


def outcome(partition: int, seq: int, successful: int, failed: int) -> dict:
    return {
        "chunkIndex": seq,
        "partition": partition,
        "partitionSeq": seq,
        "records": successful + failed,
        "successful": successful,
        "failed": failed,
        "skipped": 0,
        "created": successful,
        "updated": 0,
        "deadLettered": False,
        "stopped": None,
        "errors": [],
    }


def test_a_jobs_life_is_told_by_its_status_changes_only() -> None:
    accepted = {"jobType": "user-import", "tenant": "alice", "options": "{}"}
    queued = apply_event(None, JOB, 1, ACCEPTED, accepted)
    assert status_change(None, queued) == (None, "queued")
    active = apply_event(queued, JOB, 2, CHUNK_OUTCOME, outcome(0, 0, 2, 1))
    assert status_change(queued, active) == ("queued", "active")
    same = apply_event(active, JOB, 3, CHUNK_OUTCOME, outcome(1, 0, 1, 0))
    assert status_change(active, same) is None  # counts moved, the status did not
    split = {"totalRecords": 4, "totalChunks": 2, "unknownColumns": []}
    done = apply_event(same, JOB, 4, SPLIT_COMPLETED, split)
    assert status_change(same, done) == ("active", "completed")

    event = json.loads(outcome_event(JOB, done, ("active", "completed", True), 4_000))
    assert event == {
        "schema": SCHEMA,
        "event": "status",
        "jobId": JOB,
        "batchId": None,
        "type": "user-import",
        "tenant": "alice",
        "status": "completed",
        "previousStatus": "active",
        "final": True,
        "at": "1970-01-01T00:00:04Z",
        "counts": {
            "total": 4,
            "processed": 4,
            "successful": 3,
            "failed": 1,
            "skipped": 0,
            "created": 3,
            "updated": 0,
            "deadLettered": 0,
        },
        "error": None,
    }
