"""Standing jobs in the progress state: the day on the wire (progress event v8), the close, and
what a record counted after the close does (streams/upstream_ends.py)."""

from __future__ import annotations

import pytest

from streams.agents.outcomes import status_change
from streams.agents.status import row_of
from streams.models import ChunkInfo, ChunkResult
from streams.progress import State, apply_event, status_of
from streams.wire import events
from streams.wire.codec import PROGRESS_EVENT, codec

pytestmark = pytest.mark.unit
JOB = "0b9a7c1e-3f7d-4c1a-9a51-2f1e6d0c4b7a"
DAY = "2026-11-30"


def fold(state: State | None, data: bytes, at: int = 1) -> State:
    event = events.decode_event(data)
    return apply_event(state, event.job_id, at, event.kind, event.body)


def standing_job(day: str | None = DAY) -> State:
    accepted = events.job_accepted(JOB, "user-import", "acme", {}, upstream=True, standing_day=day)
    return fold(None, accepted)


def outcome(state: State, index: int, records: int = 10, failed: int = 0, **kw: object) -> State:
    info = ChunkInfo(JOB, "user-import", index, 3, index % 64, {}, [], "acme", index // 64)
    result = ChunkResult(records=records, successful=records - failed, failed=failed)
    return fold(state, events.chunk_outcome(info, result, **kw), at=100 + index)  # type: ignore[arg-type]


def closed(state: State, day: str = DAY, at: int = 500) -> State:
    return fold(state, events.standing_closed(JOB, day), at=at)


def test_the_day_rides_on_job_accepted_and_older_events_have_none() -> None:
    data = events.job_accepted(JOB, "user-import", "acme", {}, upstream=True, standing_day=DAY)
    assert codec().schema_id_of(data) == 108
    assert events.decode_event(data).body["standingDay"] == DAY
    close = events.decode_event(events.standing_closed(JOB, DAY))
    assert (close.kind, close.body) == (events.STANDING_CLOSED, {"day": DAY})
    accepted = {"jobType": "t", "tenant": "acme", "options": "{}", "upstream": True}
    old = {"jobId": JOB, "at": 7, "event": (events.ACCEPTED, accepted)}
    v7 = codec().encode(PROGRESS_EVENT, old, schema_id=107)
    assert events.decode_event(v7).body["standingDay"] is None


def test_a_standing_job_is_active_until_its_day_closes_then_completes_with_what_it_counted() -> (
    None
):
    state = outcome(outcome(standing_job(), 0, failed=2), 1, records=5)
    assert (state["standingDay"], status_of(state)) == (DAY, "active")
    assert row_of(state)[:3] == ("active", None, (None, None))
    done = closed(state)
    assert status_of(done) == "completed" and done["completedAt"] == 500
    assert done["totalRecords"] == 15 == done["successful"] + done["failed"] + done["skipped"]
    assert row_of(done)[:3] == ("completed", 500, (15, 2))
    assert status_change(state, done) == ("active", "completed")


def test_a_second_close_a_close_of_another_day_and_a_close_of_a_batch_change_nothing() -> None:
    done = closed(outcome(standing_job(), 0))
    assert closed(done, at=900) is done
    state = outcome(standing_job(), 0)
    assert closed(state, day="2026-11-29") is state
    batch = outcome(standing_job(day=None), 0)
    assert closed(batch) is batch and status_of(batch) == "active"


def test_a_record_counted_after_the_close_reopens_the_job_until_it_closes_again() -> None:
    done = closed(outcome(standing_job(), 0))
    late = outcome(done, 64, records=1)  # a late record: another intake lane
    assert status_of(late) == "active" and status_change(done, late) == ("completed", "active")
    assert (late["totalRecords"], late["completedAt"], late["error"]) == (None, None, None)
    assert row_of(late)[:3] == ("active", None, (None, None))
    assert outcome(late, 64, records=1) is late  # its redelivery counts once
    again = closed(late, at=800)
    assert (status_of(again), again["totalRecords"], again["completedAt"]) == ("completed", 11, 800)


def test_a_close_copy_read_after_a_reopening_closes_with_the_records_counted_by_then() -> None:
    done = closed(outcome(standing_job(), 0))
    late = outcome(done, 64, records=1)
    assert status_of(closed(late)) == "completed" and closed(late)["totalRecords"] == 11


def test_a_replayed_chunk_of_a_closed_standing_job_makes_it_active_then_final_again() -> None:
    state = outcome(outcome(standing_job(), 0), 1, records=4, failed=4, dead_lettered=True)
    done = closed(state)
    assert (status_of(done), done["failed"], done["totalRecords"]) == ("completed", 4, 14)
    info = ChunkInfo(JOB, "user-import", 1, 3, 1, {}, [], "acme", 0)
    replaying = fold(done, events.replay_requested(info, "t.dlq:0:5"))
    assert status_of(replaying) == "active"
    replayed = outcome(replaying, 1, records=4)
    assert (status_of(replayed), replayed["failed"], replayed["totalRecords"]) == (
        "completed",
        0,
        14,
    )


def test_a_cancelled_standing_job_ends_cancelled_when_its_day_closes() -> None:
    info = ChunkInfo(JOB, "user-import", 0, 3, 0, {}, [], "acme", 0)
    skipped = ChunkResult(records=10, skipped=10, stopped="cancelled")
    state = fold(standing_job(), events.chunk_outcome(info, skipped))
    assert status_of(state) == "active"
    assert status_of(closed(state)) == "cancelled"


def test_a_batch_passing_its_end_still_fails() -> None:
    state = fold(outcome(standing_job(day=None), 0), events.batch_ended(JOB, 5))
    assert state["error"] == "the batch's end said 5 records; 10 arrived"
    assert status_of(state) == "failed"
