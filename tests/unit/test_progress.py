"""streams.progress: folding progress events into a job's state exactly once, and its view."""

from __future__ import annotations

import json
from typing import Any

from api.views import status_view
from streams.progress import State, apply_event, new_state, status_of, waiting_on
from streams.wire.events import (
    ACCEPTED,
    CHUNK_OUTCOME,
    CHUNK_WAITING,
    SPLIT_COMPLETED,
    SPLIT_FAILED,
)

JOB = "job-1"
T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z


def accepted(state: State | None, at: int = T0) -> State:
    body = {"jobType": "user-import", "tenant": "acme", "options": json.dumps({"chunkSize": 100})}
    return apply_event(state, JOB, at, ACCEPTED, body)


def split_done(state: State | None, records: int, chunks: int, at: int = T0) -> State:
    body = {"totalRecords": records, "totalChunks": chunks, "unknownColumns": ["extra"]}
    return apply_event(state, JOB, at, SPLIT_COMPLETED, body)


def outcome(
    state: State | None,
    partition: int,
    seq: int,
    *,
    at: int = T0,
    records: int = 10,
    successful: int = 7,
    failed: int = 2,
    skipped: int = 1,
    created: int = 5,
    updated: int = 2,
    dead_lettered: bool = False,
    errors: list[dict[str, Any]] | None = None,
) -> State:
    body = {
        "chunkIndex": 0,
        "partition": partition,
        "partitionSeq": seq,
        "records": records,
        "successful": successful,
        "failed": failed,
        "skipped": skipped,
        "created": created,
        "updated": updated,
        "deadLettered": dead_lettered,
        "errors": errors if errors is not None else [],
    }
    return apply_event(state, JOB, at, CHUNK_OUTCOME, body)


def counts(state: State) -> tuple[int, ...]:
    return tuple(state[k] for k in ("records", "successful", "failed", "skipped", "chunksDone"))


# -- exactly once ------------------------------------------------------------------------------


def test_a_duplicate_chunk_outcome_is_counted_once() -> None:
    state = outcome(accepted(None), partition=2, seq=0)
    again = outcome(state, partition=2, seq=0)
    assert again is state  # unchanged: the table is not written
    assert counts(state) == (10, 7, 2, 1, 1)


def test_the_same_seq_on_another_partition_is_a_different_chunk() -> None:
    state = outcome(outcome(None, partition=0, seq=0), partition=1, seq=0)
    assert counts(state) == (20, 14, 4, 2, 2)


def test_out_of_order_seqs_then_the_gap_filled() -> None:
    state = outcome(None, partition=0, seq=2)
    state = outcome(state, partition=0, seq=1)
    assert state["seen"]["0"] == [0, [1, 2]]
    assert state["chunksDone"] == 2
    assert outcome(state, partition=0, seq=2) is state  # still pending, still a duplicate

    state = outcome(state, partition=0, seq=0)  # the gap: everything pending is now behind
    assert state["seen"]["0"] == [3, []]
    assert state["chunksDone"] == 3
    for seq in (0, 1, 2):
        assert outcome(state, partition=0, seq=seq) is state
    assert outcome(state, partition=0, seq=3)["chunksDone"] == 4


def test_redelivered_outcomes_in_any_order_count_each_chunk_once() -> None:
    order = [(0, 1), (1, 0), (0, 0), (0, 1), (1, 2), (0, 0), (1, 1), (1, 2), (0, 2), (1, 0)]
    state = split_done(accepted(None), records=60, chunks=6)
    for partition, seq in order:
        state = outcome(state, partition, seq)
    assert counts(state) == (60, 42, 12, 6, 6)
    assert status_of(state) == "completed"


def test_counts_add_up_over_outcomes() -> None:
    state = outcome(None, 0, 0, records=5, successful=5, failed=0, skipped=0, created=3, updated=2)
    state = outcome(state, 1, 0, records=4, successful=1, failed=2, skipped=1, created=1, updated=0)
    state = outcome(state, 0, 1, records=3, successful=0, failed=3, skipped=0, created=0, updated=0)
    assert counts(state) == (12, 6, 5, 1, 3)
    assert state["successful"] + state["failed"] + state["skipped"] == state["records"]
    assert (state["created"], state["updated"]) == (4, 2)


def test_dead_lettered_records_are_counted() -> None:
    state = outcome(None, 0, 0, records=8, successful=0, failed=8, skipped=0, dead_lettered=True)
    state = outcome(state, 0, 1)
    assert state["deadLettered"] == 8
    assert state["failed"] == 10


def test_error_samples_are_bounded() -> None:
    errors = [{"row": i, "field": "email", "reason": "duplicate"} for i in range(7)]
    state = outcome(None, 0, 0, errors=errors)
    state = outcome(state, 0, 1, errors=errors)
    assert len(state["errors"]) == 10
    assert state["errors"][:7] == errors


def test_apply_event_does_not_change_the_state_it_is_given() -> None:
    state = accepted(None)
    before = json.dumps(state, sort_keys=True)
    outcome(state, 0, 0)
    split_done(state, records=10, chunks=1)
    assert json.dumps(state, sort_keys=True) == before


def test_an_unknown_event_kind_changes_nothing() -> None:
    state = accepted(None)
    assert apply_event(state, JOB, T0, "sluice.SomethingNew", {}) is state


# -- split events ------------------------------------------------------------------------------


def test_job_accepted_records_type_tenant_and_options() -> None:
    state = accepted(None)
    assert (state["type"], state["tenant"], state["options"]) == (
        "user-import",
        "acme",
        {"chunkSize": 100},
    )
    assert state["acceptedAt"] == T0
    assert accepted(state, at=T0 + 5)["acceptedAt"] == T0  # a redelivery keeps the first time


def test_split_completed_sets_the_totals_once() -> None:
    state = split_done(accepted(None), records=2_500, chunks=7)
    assert (state["totalRecords"], state["totalChunks"]) == (2_500, 7)
    assert state["unknownColumns"] == ["extra"]
    assert split_done(state, records=1, chunks=1) is state


# -- status ------------------------------------------------------------------------------------


def test_status_goes_queued_active_completed() -> None:
    assert status_of(None) == "queued"
    state = accepted(None)
    assert status_of(state) == "queued"
    state = split_done(state, records=30, chunks=3)
    assert status_of(state) == "queued"
    state = outcome(state, 0, 0, at=T0 + 1_000)
    assert status_of(state) == "active"
    state = outcome(state, 1, 0, at=T0 + 2_000)
    assert status_of(state) == "active"
    assert state["completedAt"] is None
    state = outcome(state, 2, 0, at=T0 + 3_000)
    assert status_of(state) == "completed"
    assert state["startedAt"] == T0 + 1_000
    assert state["completedAt"] == T0 + 3_000


def test_all_chunks_done_before_split_completed_is_still_active() -> None:
    state = outcome(outcome(accepted(None), 0, 0), 1, 0)
    assert status_of(state) == "active"
    state = split_done(state, records=20, chunks=2, at=T0 + 9)
    assert status_of(state) == "completed"
    assert state["completedAt"] == T0 + 9


def test_split_failed_fails_the_job() -> None:
    state = outcome(accepted(None), 0, 0)
    state = apply_event(state, JOB, T0 + 50, SPLIT_FAILED, {"reason": "upload interrupted"})
    assert status_of(state) == "failed"
    assert state["error"] == "upload interrupted"
    assert state["completedAt"] == T0 + 50


def test_completed_at_is_set_once() -> None:
    state = split_done(accepted(None), records=10, chunks=1)
    state = outcome(state, 0, 0, at=T0 + 100)
    assert state["completedAt"] == T0 + 100
    state = outcome(state, 3, 0, at=T0 + 200)  # a stray late outcome
    state = apply_event(state, JOB, T0 + 300, SPLIT_FAILED, {"reason": "late"})
    assert state["completedAt"] == T0 + 100


def test_a_zero_record_job_completes_on_split_completed() -> None:
    state = split_done(accepted(None), records=0, chunks=0, at=T0 + 7)
    assert status_of(state) == "completed"
    assert state["completedAt"] == T0 + 7
    view = status_view(JOB, "user-import", state, 0)
    assert view["status"] == "completed"
    assert view["progress"]["percentage"] == 100.0
    assert view["progress"]["total"] == 0


# -- the status view ---------------------------------------------------------------------------


def test_status_view_fields_and_percentage() -> None:
    state = split_done(accepted(None), records=30, chunks=3)
    errors = [{"row": 4, "field": "email", "reason": "duplicate"}]
    state = outcome(state, 0, 0, at=T0 + 1_500, errors=errors)
    view = status_view(JOB, "user-import", state, None)
    assert view == {
        "jobId": JOB,
        "type": "user-import",
        "status": "active",
        "progress": {
            "percentage": 33.33,
            "processed": 10,
            "total": 30,
            "successful": 7,
            "failed": 2,
            "skipped": 1,
            "currentChunk": 1,
            "totalChunks": 3,
        },
        "createdAt": "2023-11-14T22:13:20Z",
        "startedAt": "2023-11-14T22:13:21.500000Z",
        "completedAt": None,
        "error": None,
        "waitingOn": None,
        "hasErrors": True,
        "outcome": None,  # not before the job ends
        "summary": {
            "created": 5,
            "updated": 2,
            "deadLettered": 0,
            "deadLetteredChunks": 0,
            "deadLettersLost": 0,
            "lastReplayAt": None,
            "unknownColumns": ["extra"],
            "errorsTotal": 2,
            "errors": errors,
        },
    }


def test_a_completed_job_says_what_became_of_its_records() -> None:
    def finished(*chunks: tuple[int, int, int]) -> dict[str, Any]:
        state = split_done(accepted(None), records=10 * len(chunks), chunks=len(chunks))
        for partition, (successful, failed, skipped) in enumerate(chunks):
            counts = {"successful": successful, "failed": failed, "skipped": skipped}
            state = outcome(state, partition, 0, **counts)
        return status_view(JOB, "user-import", state, None)

    clean = finished((9, 0, 1), (10, 0, 0))
    assert (clean["status"], clean["outcome"], clean["hasErrors"]) == ("completed", "clean", False)
    assert clean["summary"]["errorsTotal"] == 0
    some = finished((9, 0, 1), (7, 3, 0))
    assert (some["status"], some["outcome"], some["hasErrors"]) == (
        "completed",
        "withErrors",
        True,
    )
    every = finished((0, 10, 0), (0, 10, 0))
    assert (every["status"], every["outcome"], every["summary"]["errorsTotal"]) == (
        "completed",
        "allFailed",
        20,
    )
    # skipped records are not failures: failed and skipped only is not "allFailed"
    assert finished((0, 5, 5))["outcome"] == "withErrors"


def test_a_dead_lettered_chunk_counts_as_failed_records_in_the_outcome() -> None:
    state = split_done(accepted(None), records=20, chunks=2)
    state = outcome(state, 0, 0, successful=10, failed=0, skipped=0)
    state = outcome(state, 1, 0, successful=0, failed=10, skipped=0, dead_lettered=True)
    view = status_view(JOB, "user-import", state, None)
    assert (view["status"], view["outcome"], view["hasErrors"]) == ("completed", "withErrors", True)
    assert (view["summary"]["deadLettered"], view["summary"]["errorsTotal"]) == (10, 10)


def test_errors_keep_a_sample_while_errors_total_counts_them_all() -> None:
    state = split_done(accepted(None), records=30, chunks=3)
    for partition in range(3):
        errors = [{"row": 10 * partition + n, "field": "age", "reason": "bad"} for n in range(8)]
        counts = {"successful": 2, "failed": 8, "skipped": 0}
        state = outcome(state, partition, 0, errors=errors, **counts)
    summary = status_view(JOB, "user-import", state, None)["summary"]
    assert (len(summary["errors"]), summary["errorsTotal"]) == (10, 24)


def test_status_view_of_a_completed_job_is_100_percent() -> None:
    state = split_done(accepted(None), records=20, chunks=2)
    state = outcome(outcome(state, 0, 0), 1, 0, at=T0 + 2_000)
    view = status_view(JOB, "user-import", state, 20)
    assert view["status"] == "completed"
    assert view["progress"]["percentage"] == 100.0
    assert view["completedAt"] == "2023-11-14T22:13:22Z"


def test_status_view_without_state_uses_the_registry_total() -> None:
    view = status_view(JOB, "user-import", None, 1_000)
    assert view["status"] == "queued"
    assert view["type"] == "user-import"
    assert view["progress"]["total"] == 1_000
    assert view["progress"]["percentage"] == 0.0
    assert (view["startedAt"], view["completedAt"]) == (None, None)


def test_status_view_prefers_the_split_total_over_the_registry() -> None:
    state = outcome(split_done(accepted(None), records=40, chunks=4), 0, 0)
    assert status_view(JOB, "user-import", state, 999)["progress"]["total"] == 40


def test_new_state_is_queued_and_empty() -> None:
    state = new_state(JOB)
    assert status_of(state) == "queued"
    assert counts(state) == (0, 0, 0, 0, 0)


def test_a_replayed_dead_letter_replaces_its_counts_once() -> None:
    def outcome(dead: bool, successful: int, failed: int) -> dict:
        return {
            "chunkIndex": 0,
            "partition": 1,
            "partitionSeq": 0,
            "records": 10,
            "successful": successful,
            "failed": failed,
            "skipped": 0,
            "created": successful,
            "updated": 0,
            "deadLettered": dead,
            "errors": [],
        }

    state = apply_event(
        None,
        "j",
        1,
        "sluice.SplitCompleted",
        {"totalRecords": 10, "totalChunks": 1, "unknownColumns": []},
    )
    state = apply_event(state, "j", 2, "sluice.ChunkOutcome", outcome(True, 0, 10))
    assert (state["failed"], state["deadLettered"], status_of(state)) == (10, 10, "completed")
    assert apply_event(state, "j", 3, "sluice.ChunkOutcome", outcome(True, 0, 10)) is state

    replayed = apply_event(state, "j", 4, "sluice.ChunkOutcome", outcome(False, 9, 1))
    assert (replayed["successful"], replayed["failed"], replayed["deadLettered"]) == (9, 1, 0)
    assert replayed["records"] == 10 and replayed["chunksDone"] == 1
    # replaying the same dead letter again changes nothing
    assert apply_event(replayed, "j", 5, "sluice.ChunkOutcome", outcome(False, 9, 1)) is replayed
    assert apply_event(replayed, "j", 6, "sluice.ChunkOutcome", outcome(True, 0, 10)) is replayed


def _chunk(seq: int, dead: bool, errors: list[dict] | None = None) -> dict:
    """The outcome of chunk `seq` (10 records, partition 0): applied, or dead-lettered."""
    return {
        "chunkIndex": seq,
        "partition": 0,
        "partitionSeq": seq,
        "records": 10,
        "successful": 0 if dead else 10,
        "failed": 10 if dead else 0,
        "skipped": 0,
        "created": 0 if dead else 10,
        "updated": 0,
        "deadLettered": dead,
        "errors": errors or [],
    }


def _dead_lettered_job() -> dict:
    state = apply_event(
        None,
        "j",
        1,
        "sluice.SplitCompleted",
        {"totalRecords": 20, "totalChunks": 2, "unknownColumns": []},
    )
    state = apply_event(state, "j", 2, "sluice.ChunkOutcome", _chunk(0, False))
    sample = [{"row": 11 + i, "field": None, "reason": "chunk dead-lettered: X"} for i in range(10)]
    return apply_event(state, "j", 3, "sluice.ChunkOutcome", _chunk(1, True, sample))


REPLAY = {"chunkIndex": 1, "partition": 0, "partitionSeq": 1, "deadLetter": "t.dlq:0:0"}


def _second_chunk(dead: bool) -> dict:
    return _chunk(1, dead)


def test_a_replay_reopens_a_completed_job_until_the_chunk_outcome_arrives() -> None:
    state = _dead_lettered_job()
    assert status_of(state) == "completed" and state["completedAt"] == 3
    assert status_view("j", "user-import", state, 20)["summary"]["deadLetteredChunks"] == 1

    reopened = apply_event(state, "j", 10, "sluice.ReplayRequested", REPLAY)
    assert status_of(reopened) == "active" and reopened["completedAt"] is None
    assert reopened["lastReplayAt"] == 10
    # the same request twice (a redelivery) changes nothing
    assert apply_event(reopened, "j", 10, "sluice.ReplayRequested", REPLAY) is reopened

    done = apply_event(reopened, "j", 12, "sluice.ChunkOutcome", _second_chunk(False))
    assert status_of(done) == "completed" and done["completedAt"] == 12
    assert (done["successful"], done["failed"], done["deadLettered"]) == (20, 0, 0)
    assert done["errors"] == []  # the dead-lettering's sample rows are gone with it
    # a replay request for a chunk no longer parked reopens nothing
    late = apply_event(done, "j", 13, "sluice.ReplayRequested", REPLAY)
    assert status_of(late) == "completed" and late["successful"] == 20


def test_a_replayed_chunk_dead_lettered_again_ends_the_job_again_with_the_same_counts() -> None:
    state = _dead_lettered_job()
    reopened = apply_event(state, "j", 10, "sluice.ReplayRequested", REPLAY)
    again = apply_event(reopened, "j", 11, "sluice.ChunkOutcome", _second_chunk(True))
    assert status_of(again) == "completed" and again["completedAt"] == 11
    assert (again["successful"], again["failed"], again["deadLettered"]) == (10, 10, 10)
    assert again["records"] == 20 and again["chunksDone"] == 2
    # and it can be replayed again later
    assert status_of(apply_event(again, "j", 12, "sluice.ReplayRequested", REPLAY)) == "active"


# -- chunks waiting for the database -------------------------------------------------------------


def waiting(state: State | None, partition: int, seq: int, at: int = T0) -> State:
    body = {
        "chunkIndex": 0,
        "partition": partition,
        "partitionSeq": seq,
        "reason": "database",
        "error": "OperationalError: connection refused",
    }
    return apply_event(state, JOB, at, CHUNK_WAITING, body)


def test_a_waiting_chunk_makes_its_job_active_and_says_what_it_waits_for() -> None:
    state = split_done(accepted(None), records=20, chunks=2)
    assert status_of(state) == "queued"
    state = waiting(state, 0, 0, at=T0 + 5)
    assert status_of(state) == "active"
    assert waiting_on(state) == "database"
    view = status_view(JOB, "user-import", state, None)
    assert (view["status"], view["waitingOn"]) == ("active", "database")
    assert waiting(state, 0, 0, at=T0 + 9) is state  # said again: nothing changes


def test_the_chunks_outcome_ends_its_wait_and_a_late_wait_changes_nothing() -> None:
    state = waiting(split_done(accepted(None), records=20, chunks=2), 0, 0)
    state = outcome(state, 0, 0)
    assert waiting_on(state) is None
    assert waiting(state, 0, 0) is state  # the chunk is counted already
    state = outcome(state, 1, 0)
    assert status_of(state) == "completed"
    assert status_view(JOB, "user-import", state, None)["waitingOn"] is None


def test_a_cancelled_job_shows_how_far_it_got_not_100_percent() -> None:
    state = split_done(accepted(None), records=30, chunks=3)
    state = outcome(state, 0, 0)  # applied before the cancel
    for partition in (1, 2):  # skipped: the job was cancelled (the writer's stop mark)
        body = {
            "chunkIndex": partition,
            "partition": partition,
            "partitionSeq": 0,
            "records": 10,
            "successful": 0,
            "failed": 0,
            "skipped": 10,
            "created": 0,
            "updated": 0,
            "deadLettered": False,
            "errors": [],
            "stopped": "cancelled",
        }
        state = apply_event(state, JOB, T0 + 1_000, CHUNK_OUTCOME, body)
    view = status_view(JOB, "user-import", state, None)
    assert view["status"] == "cancelled"
    assert view["progress"]["processed"] == 30 and view["progress"]["skipped"] == 21
    assert view["progress"]["percentage"] == 33.33


def test_the_registry_totals_stand_in_until_the_split_end_is_folded() -> None:
    state = outcome(accepted(None), 0, 0)  # the split's end not folded yet: the 202 said 64
    view = status_view(JOB, "user-import", state, 64_000, total_chunks=64)
    assert (view["progress"]["total"], view["progress"]["totalChunks"]) == (64_000, 64)
    assert view["progress"]["percentage"] == round(100 * 10 / 64_000, 2)
