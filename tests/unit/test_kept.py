"""streams.kept: what the registry keeps of a finished job, and when a status lookup answers from
it rather than from the progress table (which a broker that lost its data emptied)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from api.views import job_view
from streams.agents.status import row_of
from streams.config import Settings
from streams.kept import LOST_REASON, answering, kept_of, restore, settled_state
from streams.progress import status_of
from streams.sink.jobs import JobRecord
from streams.sink.lost import Applied
from tests.unit.test_progress import T0, accepted, outcome, split_done

JOB = "job-1"
SETTINGS = Settings()
CREATED = datetime(2023, 11, 14, 22, 0, tzinfo=UTC)


def finished() -> dict[str, Any]:
    state = split_done(accepted(None), records=20, chunks=2)
    state = outcome(state, 0, 0, at=T0 + 10, errors=[{"row": 3, "field": "age", "reason": "x"}])
    return outcome(state, 1, 0, at=T0 + 20, dead_lettered=True)


def record(state: dict[str, Any] | None, **values: Any) -> JobRecord:
    kept = row_of(state)[3] if state is not None else None
    fields: dict[str, Any] = {
        "id": JOB,
        "tenant": "acme",
        "type": "user-import",
        "options": {"chunkSize": 100},
        "created_at": CREATED,
        "total_records": 20,
        "total_chunks": 2,
        "error": None,
        "stopped": None,
        "status": status_of(state) if state is not None else None,
        "kept_state": json.loads(kept) if kept else None,
    }
    return JobRecord(**{**fields, **values})


def test_a_finished_state_is_kept_without_its_bookkeeping_and_restores_to_the_same_view() -> None:
    state = finished()
    assert status_of(state) == "completed"
    kept = json.loads(row_of(state)[3] or "null")
    assert "seen" not in kept and "waiting" not in kept
    assert kept["deadLetters"] == {"1:0": {}}
    restored = restore(JOB, kept)
    assert status_of(restored) == "completed"
    job = record(state)
    assert job_view(JOB, job, restored, SETTINGS) == job_view(JOB, job, state, SETTINGS)


def test_an_unfinished_state_keeps_nothing() -> None:
    state = outcome(split_done(accepted(None), records=20, chunks=2), 0, 0)
    assert status_of(state) == "active" and row_of(state)[3] is None


def test_a_lookup_answers_from_the_registry_when_the_table_lost_the_job() -> None:
    state = finished()
    job = record(state)
    assert answering(job, state) == (state, False)  # the table holds it: the table answers
    for emptier in (None, accepted(None), outcome(None, 0, 0)):  # lost; fresh; never announced
        found, from_registry = answering(job, emptier)
        assert from_registry and found is not None and found["records"] == 20
    view = job_view(JOB, job, None, SETTINGS)
    assert (view["status"], view["progress"]["processed"], view["startedAt"]) == (
        "completed",
        20,
        "2023-11-14T22:13:20.010000Z",
    )
    assert view["completedAt"] == "2023-11-14T22:13:20.020000Z" and view["expiresAt"] is not None
    assert view["summary"]["deadLetteredChunks"] == 1 and view["summary"]["errors"]


def test_a_job_reopened_by_a_replay_answers_from_the_table() -> None:
    state = finished()
    job = record(state, status="active", kept_state=None)  # the registry followed the replay
    assert answering(job, state) == (state, False)


def test_lost_dead_letters_are_reported_in_the_summary() -> None:
    state = finished()
    view = job_view(JOB, record(state, dead_letters_lost=1), None, SETTINGS)
    assert view["summary"]["deadLettersLost"] == 1
    assert job_view(JOB, record(state), state, SETTINGS)["summary"]["deadLettersLost"] == 0


def test_a_job_lost_unfinished_is_settled_failed_from_what_was_applied() -> None:
    applied = Applied(
        chunks=3,
        counts={"records": 30, "successful": 30, "failed": 0, "skipped": 0, "created": 30}
        | {"updated": 0},
        first_applied=CREATED,
        errors=[{"row": 41, "field": None, "reason": "boom"}],
        dead_chunks={4: 10},
    )
    totals = {"total_records": 50, "total_chunks": 5}
    kept = settled_state(record(None, status="active", **totals), applied, LOST_REASON, T0)
    restored = restore(JOB, kept)
    assert status_of(restored) == "failed"
    failed = record(None, status="failed", error=LOST_REASON, kept_state=kept, **totals)
    view = job_view(JOB, failed, None, SETTINGS)
    assert view["status"] == "failed" and view["error"] == LOST_REASON
    assert view["progress"] | {"percentage": None} == {
        "percentage": None,
        "processed": 40,
        "total": 50,
        "successful": 30,
        "failed": 10,
        "skipped": 0,
        "currentChunk": 4,
        "totalChunks": 5,
    }
    assert view["summary"]["deadLettered"] == 10 and view["startedAt"] == "2023-11-14T22:00:00Z"
    assert kept_of(restored)["deadLetters"] == {"chunk:4": {}}
