"""Intake chunks: lanes and batch ends on the wire (chunk v4, progress event v7) and in the
progress state (streams/progress.py)."""

from __future__ import annotations

import json

import pytest

from streams.agents.status import row_of
from streams.exceptions import PoisonMessage
from streams.models import Chunk, ChunkInfo, ChunkResult
from streams.progress import State, apply_event, lane_key, new_state, status_of
from streams.sink.ledger import content_digest
from streams.wire import events
from streams.wire.chunks import decode_chunk, encode_chunk
from streams.wire.codec import CHUNK, PROGRESS_EVENT, codec

JOB = "0b9a7c1e-3f7d-4c1a-9a51-2f1e6d0c4b7a"
BLOCK = 64
RECORDS = [{"row": 1, "fields": {"email": "a@x.io"}, "error": None}]


def fold(state: State | None, data: bytes, at: int = 1) -> State:
    event = events.decode_event(data)
    return apply_event(state, event.job_id, at, event.kind, event.body)


def info(index: int, *, partition: int = 3, lane: int | None = None) -> ChunkInfo:
    """An intake chunk (lane from its index) or, with lane=-1, a split chunk."""
    lane = index // BLOCK if lane is None else lane
    seq = index % BLOCK if lane >= 0 else index
    return ChunkInfo(JOB, "user-import", index, partition, seq, {}, [], "acme", lane)


def result(records: int, failed: int = 0) -> ChunkResult:
    return ChunkResult(records=records, successful=records - failed, failed=failed)


def upstream_job(**options: object) -> State:
    return fold(None, events.job_accepted(JOB, "user-import", "acme", options, upstream=True))


def outcome(state: State, index: int, records: int = 10, **kw: object) -> State:
    return fold(state, events.chunk_outcome(info(index), result(records), **kw))  # type: ignore[arg-type]


# -- the wire ----------------------------------------------------------------------------------


def test_a_version_4_chunk_round_trips_its_lane() -> None:
    chunk = Chunk(JOB, "user-import", "acme", 130, 2, 2, {}, RECORDS, lane=2)
    data = encode_chunk(chunk)
    assert codec().schema_id_of(data) == 4
    assert decode_chunk(data).lane == 2
    assert ChunkInfo.of(decode_chunk(data)).lane == 2


def test_a_version_3_chunk_decodes_with_lane_minus_1() -> None:
    record = {
        "jobId": JOB,
        "jobType": "user-import",
        "chunkIndex": 0,
        "partitionSeq": 0,
        "options": "{}",
        "records": [{"row": 1, "fields": None, "values": ["a@x.io"], "error": None}],
        "columns": ["email"],
    }
    chunk = decode_chunk(codec().encode(CHUNK, record, schema_id=3))
    assert chunk.lane == -1 and chunk.records[0]["fields"] == {"email": "a@x.io"}


@pytest.mark.parametrize("lane", [-2, 2**31])
def test_a_lane_out_of_range_is_poison(lane: int) -> None:
    chunk = Chunk(JOB, "user-import", "acme", 0, 0, 0, {}, RECORDS, lane=lane)
    with pytest.raises(PoisonMessage, match=r"lane .* out of range \(-1 to 2\^31-1\)"):
        decode_chunk(encode_chunk(chunk))


def test_the_digest_covers_an_intake_chunks_lane_and_keeps_split_chunks_digests() -> None:
    split = Chunk(JOB, "user-import", "acme", 0, 1, 0, {}, RECORDS)
    assert content_digest(split) == content_digest(Chunk(**{**split.__dict__, "lane": -1}))
    intake = [Chunk(**{**split.__dict__, "lane": lane}) for lane in (0, 1)]
    assert len({content_digest(split), *map(content_digest, intake)}) == 3


def test_a_version_6_chunk_outcome_decodes_with_lane_minus_1() -> None:
    body = {
        "chunkIndex": 4,
        "partition": 1,
        "partitionSeq": 2,
        **dict.fromkeys(("records", "successful", "created"), 5),
        **dict.fromkeys(("failed", "skipped", "updated"), 0),
        "errors": [],
    }
    record = {"jobId": JOB, "at": 7, "event": (events.CHUNK_OUTCOME, body)}
    event = events.decode_event(codec().encode(PROGRESS_EVENT, record, schema_id=106))
    assert (event.kind, event.body["lane"], event.body["partitionSeq"]) == (
        events.CHUNK_OUTCOME,
        -1,
        2,
    )
    accepted = {"jobType": "t", "tenant": "acme", "options": "{}"}
    old = {"jobId": JOB, "at": 7, "event": (events.ACCEPTED, accepted)}
    assert (
        events.decode_event(codec().encode(PROGRESS_EVENT, old, schema_id=106)).body["upstream"]
        is False
    )


def test_the_events_carry_the_lane_and_the_batch_end() -> None:
    chunk = info(70)
    for data in (
        events.chunk_outcome(chunk, result(1)),
        events.chunk_waiting(chunk, "database", "away"),
        events.replay_requested(chunk, "t.dlq:0:5"),
    ):
        assert lane_key(events.decode_event(data).body) == "b1"
    ended = events.decode_event(events.batch_ended(JOB, 12))
    assert (ended.kind, ended.body) == (events.BATCH_ENDED, {"count": 12})
    assert codec().schema_id_of(events.batch_ended(JOB, 12)) == 108


# -- the progress state ------------------------------------------------------------------------


def test_two_lanes_out_of_order_count_each_chunk_once() -> None:
    state = upstream_job()
    assert state["upstream"] and not state["ended"]
    for index in (65, 1, 0, 64, 1, 65, 2, 0):
        state = outcome(state, index)
    assert (state["records"], state["chunksDone"]) == (50, 5)
    assert state["seen"] == {"b0": [3, []], "b1": [2, []]}
    assert status_of(state) == "active"
    state = fold(state, events.batch_ended(JOB, 50))
    assert (status_of(state), state["totalRecords"], state["completedAt"]) == ("completed", 50, 1)
    assert row_of(state)[:3] == ("completed", 1, (50, 5))


def test_a_lane_and_a_partition_with_the_same_number_are_different_chunks() -> None:
    state = outcome(upstream_job(), 0)
    state = fold(state, events.chunk_outcome(info(0, partition=0, lane=-1), result(10)))
    assert state["seen"] == {"b0": [1, []], "0": [1, []]}
    assert state["records"] == 20


def test_the_batch_end_before_its_records() -> None:
    state = fold(upstream_job(), events.batch_ended(JOB, 25))
    assert (status_of(state), row_of(state)[:3]) == ("queued", ("queued", None, (25, 0)))
    state = outcome(state, 0)
    assert status_of(state) == "active"
    state = outcome(outcome(state, 2, records=5), 1)
    assert status_of(state) == "completed" and state["error"] is None
    assert fold(state, events.batch_ended(JOB, 25)) is state  # a second copy
    assert fold(state, events.batch_ended(JOB, 99)) is state  # the first end holds


def test_an_upstream_job_without_its_end_stays_active() -> None:
    state = outcome(upstream_job(), 0)
    assert status_of(state) == "active"
    assert row_of(state)[:3] == ("active", None, (None, None))  # its totals: not known yet


def test_more_records_than_the_end_said_fail_the_job() -> None:
    state = fold(outcome(outcome(upstream_job(), 0), 1), events.batch_ended(JOB, 15))
    assert status_of(state) == "failed"
    assert state["error"] == "the batch's end said 15 records; 20 arrived"
    later = fold(upstream_job(), events.batch_ended(JOB, 15))
    later = outcome(outcome(later, 0), 64)
    assert (status_of(later), later["error"]) == (
        "failed",
        "the batch's end said 15 records; 20 arrived",
    )


def test_the_end_and_the_records_before_the_job_accepted() -> None:
    state = fold(outcome(new_state(JOB), 0, 12), events.batch_ended(JOB, 10))
    assert status_of(state) == "active" and state["error"] is None  # not known upstream yet
    state = fold(state, events.job_accepted(JOB, "user-import", "acme", {}, upstream=True))
    assert (status_of(state), state["error"]) == (
        "failed",
        "the batch's end said 10 records; 12 arrived",
    )


def test_an_upstream_job_with_stop_on_error_fails_and_cancelled_is_cancelled() -> None:
    state = upstream_job(stopOnError=True)
    state = fold(state, events.chunk_outcome(info(0), result(10, failed=1)))
    assert status_of(fold(state, events.batch_ended(JOB, 10))) == "failed"
    stopped = ChunkResult(records=4, skipped=4, stopped="cancelled")
    state = fold(outcome(upstream_job(), 0, 6), events.chunk_outcome(info(1), stopped))
    assert status_of(fold(state, events.batch_ended(JOB, 10))) == "cancelled"


def test_a_dead_lettered_intake_chunk_replayed_replaces_its_counts_once() -> None:
    state = fold(outcome(upstream_job(), 64), events.batch_ended(JOB, 20))
    dead = events.chunk_outcome(info(65), result(10, failed=10), dead_lettered=True)
    state = fold(state, dead, at=2)
    assert state["deadLetters"].keys() == {"b1:1"}
    assert (status_of(state), state["failed"], state["deadLettered"]) == ("completed", 10, 10)
    assert fold(state, dead) is state

    state = fold(state, events.replay_requested(info(65), "t.dlq:0:1"), at=3)
    assert status_of(state) == "active" and state["deadLetters"]["b1:1"]["replaying"]
    applied = events.chunk_outcome(info(65), result(10, failed=1))
    state = fold(state, applied, at=4)
    assert (status_of(state), state["completedAt"]) == ("completed", 4)
    assert (state["records"], state["failed"], state["deadLettered"], state["chunksDone"]) == (
        20,
        1,
        0,
        2,
    )
    assert fold(state, applied) is state and fold(state, dead) is state


def test_a_waiting_intake_chunk_is_keyed_by_its_lane() -> None:
    state = fold(upstream_job(), events.chunk_waiting(info(66), "database", "away"))
    assert state["waiting"].keys() == {"b1:2"} and status_of(state) == "active"
    state = outcome(state, 66)
    assert state["waiting"] == {}
    assert fold(state, events.chunk_waiting(info(66), "database", "away")) is state


def test_an_http_job_keeps_its_keys_and_totals() -> None:
    options = json.dumps({})
    accepted = {"jobType": "user-import", "tenant": "acme", "options": options}
    state = apply_event(None, JOB, 1, events.ACCEPTED, accepted)
    assert state["upstream"] is False
    dead = events.chunk_outcome(info(3, partition=2, lane=-1), result(10, 10), dead_lettered=True)
    state = fold(state, dead)
    assert state["deadLetters"].keys() == {"2:3"} and state["seen"] == {"2": [0, [3]]}
    assert row_of(state)[:3] == ("active", None, None)
