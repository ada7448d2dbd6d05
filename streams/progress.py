"""A job's progress state, how each progress event changes it exactly once, and its status view.

The state lives in a Faust table keyed by job id (streams/agents/progress.py) and is a plain
JSON-able dict. Chunk outcomes may be delivered more than once (at-least-once everywhere), so
the state remembers which chunks it has counted: per partition, the next expected
`partitionSeq` plus the few seen out of order. A partition's chunks are processed in order, so
this stays a handful of integers per partition however large the job is. Intake chunks (from
the input topics) count by lane instead: a block of 64 chunk indexes one intake task uses in
order (`lane_key`). Dead-lettered chunks
are also kept by key with their counts, so the outcome of a replayed chunk replaces theirs
exactly once. The API shapes a state into a job's status (api/views.py).
"""

from __future__ import annotations

import json
from typing import Any

from streams import upstream_ends
from streams.wire.events import (
    ACCEPTED,
    BATCH_ENDED,
    CHUNK_OUTCOME,
    CHUNK_WAITING,
    REPLAY_REQUESTED,
    RESULT_READY,
    SPLIT_COMPLETED,
    SPLIT_FAILED,
    STANDING_CLOSED,
)

ERROR_SAMPLE_SIZE = 10
FINISHED = ("completed", "failed", "cancelled")
COUNTS = ("records", "successful", "failed", "skipped", "created", "updated")

State = dict[str, Any]


def new_state(job_id: str) -> State:
    return {
        "jobId": job_id,
        "type": None,
        "tenant": None,
        "options": {},
        "acceptedAt": None,
        "startedAt": None,
        "completedAt": None,
        "totalRecords": None,
        "totalChunks": None,
        "chunksDone": 0,
        **dict.fromkeys(COUNTS, 0),
        "deadLettered": 0,
        "stopSkipped": 0,  # records of chunks skipped because the job was cancelled or stopped
        "seen": {},
        "unknownColumns": [],
        "errors": [],
        "error": None,
        "stopped": None,
        "deadLetters": {},
        # chunks waiting for what they write to (the database), by "partition:seq"
        "waiting": {},
        # a job whose type has a result (an export's file): it is completed once a result
        # made from its final counts (`resultBasis`) is there
        "awaitsResult": False,
        "result": None,
        "resultBasis": None,
        "resultError": None,
        # records from an input topic: the total is known once the batch's end says it, or
        # the standing job's day (UTC, YYYY-MM-DD) closes (streams/upstream_ends.py)
        "upstream": False,
        "ended": False,
        "standingDay": None,
    }


def lane_key(body: dict) -> str:
    """What a chunk's `partitionSeq` counts within: its partition (a chunk the API split), or
    `b<lane>` (an intake chunk: its block of chunk indexes). Keys `seen`, and with the sequence
    (`<lane_key>:<partitionSeq>`) `deadLetters` and `waiting`."""
    lane = body.get("lane", -1)
    return str(body["partition"]) if lane < 0 else f"b{lane}"


def _chunk_key(body: dict) -> str:
    return f"{lane_key(body)}:{body['partitionSeq']}"


def _counted(state: State, lane: str, seq: int) -> bool:
    next_seq, pending = state["seen"].get(lane, (0, []))
    return seq < next_seq or seq in pending


def _first_sighting(state: State, lane: str, seq: int) -> bool:
    """Mark (lane, seq) as counted; False when it was counted before."""
    seen = state["seen"]
    if _counted(state, lane, seq):
        return False
    next_seq, pending = seen.get(lane, (0, []))
    pending = [*pending, seq]
    while next_seq in pending:
        pending.remove(next_seq)
        next_seq += 1
    seen[lane] = [next_seq, sorted(pending)]
    return True


def apply_event(state: State | None, job_id: str, at_ms: int, kind: str, body: dict) -> State:
    """The state after one progress event; returns `state` itself when nothing changed."""
    current = new_state(job_id) if state is None else state
    updated = json.loads(json.dumps(current))  # a deep copy: the table sees a new value
    updated.setdefault("deadLetters", {})  # states written before dead letters were kept
    updated.setdefault("waiting", {})  # or before chunks said they wait
    if kind == ACCEPTED:
        updated.update(
            type=body["jobType"],
            tenant=body["tenant"],
            options=json.loads(body["options"]),
            acceptedAt=updated["acceptedAt"] or at_ms,
            awaitsResult=bool(body.get("awaitsResult")),
            upstream=bool(body.get("upstream")),
            standingDay=body.get("standingDay"),
        )
    elif kind == SPLIT_COMPLETED:
        if updated["totalChunks"] is not None:
            return current
        updated.update(
            totalRecords=body["totalRecords"],
            totalChunks=body["totalChunks"],
            unknownColumns=list(body["unknownColumns"]),
        )
    elif kind in (BATCH_ENDED, STANDING_CLOSED):  # an upstream job's total is known
        if not upstream_ends.end(updated, kind, body):
            return current
    elif kind == SPLIT_FAILED:
        updated.update(error=body["reason"])
    elif kind == CHUNK_OUTCOME:
        if not _count_outcome(updated, body, at_ms):
            return current
        updated["waiting"].pop(_chunk_key(body), None)
    elif kind == CHUNK_WAITING:
        if not _note_waiting(updated, body, at_ms):
            return current
    elif kind == REPLAY_REQUESTED:
        if not _note_replay(updated, body, at_ms):
            return current
    elif kind == RESULT_READY:
        if body["basis"] != result_basis(updated) or has_current_result(updated):
            return current  # made from counts since changed (a replay), or a second copy
        updated.update(
            result=json.loads(body["result"]) if body.get("result") else None,
            resultError=body.get("error"),
            resultBasis=body["basis"],
        )
    else:
        return current
    upstream_ends.note_past_end(updated)
    finished = status_of(updated) in FINISHED
    if finished and updated["completedAt"] is None:
        updated["completedAt"] = at_ms
    elif not finished:
        updated["completedAt"] = None  # a replay reopened it
    return updated


def _count_outcome(state: State, body: dict, at_ms: int) -> bool:
    """Count one chunk outcome into `state`; False when it changes nothing (a duplicate)."""
    key = _chunk_key(body)
    parked = state["deadLetters"]
    if key in parked:
        if body.get("deadLettered"):
            if not parked[key].get("replaying"):
                return False  # the first dead-lettering, delivered again
            parked[key]["replaying"] = False  # the replay failed too: still parked
            return True
        # a dead-lettered chunk applied after all (replayed): its outcome replaces the one
        # that counted its records as failed; later copies of either are duplicates
        old = parked.pop(key)
        for name in COUNTS:
            state[name] += body[name] - old[name]
        state["deadLettered"] -= old["records"]
        dropped = set(old.get("sampled", []))
        state["errors"] = [e for e in state["errors"] if e["row"] not in dropped]
        _sample_errors(state, body["errors"])
        _note_stop(state, body)
        return True
    if not _first_sighting(state, lane_key(body), body["partitionSeq"]):
        return False
    for name in COUNTS:
        state[name] += body[name]
    if body.get("stopped"):
        state["stopSkipped"] = state.get("stopSkipped", 0) + body["records"]
    sampled = _sample_errors(state, body["errors"])
    if body.get("deadLettered"):
        state["deadLettered"] += body["records"]
        parked[key] = {**{name: body[name] for name in COUNTS}, "sampled": sampled}
    _note_stop(state, body)
    state["chunksDone"] += 1
    state["startedAt"] = state["startedAt"] or at_ms
    return True


def _note_replay(state: State, body: dict, at_ms: int) -> bool:
    """A dead-lettered chunk is published again; False when that changes nothing."""
    changed = False
    if at_ms > (state.get("lastReplayAt") or 0):
        state["lastReplayAt"] = at_ms  # a replay waits for this before it answers
        changed = True
    parked = state["deadLetters"].get(_chunk_key(body))
    if parked is not None and not parked.get("replaying"):  # else applied since, or a copy
        parked["replaying"] = True
        changed = True
    return changed


def _note_waiting(state: State, body: dict, at_ms: int) -> bool:
    """A chunk not counted yet waits; False when that changes nothing."""
    key = _chunk_key(body)
    if key in state["waiting"] or _counted(state, lane_key(body), body["partitionSeq"]):
        return False
    state["waiting"][key] = {"reason": body["reason"], "error": body["error"], "since": at_ms}
    return True


def waiting_on(state: State | None) -> str | None:
    """What the job's chunks are waiting for (the database), if any is."""
    reasons = sorted({w["reason"] for w in (state or {}).get("waiting", {}).values()})
    return ", ".join(reasons) or None


def _sample_errors(state: State, errors: list[dict]) -> list[int]:
    """Keep the first few record errors of a job; the rows of those kept."""
    room = max(ERROR_SAMPLE_SIZE - len(state["errors"]), 0)
    kept = errors[:room]
    state["errors"].extend(kept)
    return [e["row"] for e in kept]


def _note_stop(state: State, body: dict) -> None:
    if body.get("stopped") and not state.get("stopped"):
        state["stopped"] = body["stopped"]


def result_basis(state: State) -> str:
    """The counts a job's result is made from; a result made from other counts is stale."""
    return ":".join(
        str(state[name]) for name in ("chunksDone", "deadLettered", "successful", "failed")
    )


def has_current_result(state: State) -> bool:
    return state.get("resultBasis") is not None and state["resultBasis"] == result_basis(state)


def _replaying(state: State) -> bool:
    return any(parked.get("replaying") for parked in state.get("deadLetters", {}).values())


def awaits_result(state: State | None) -> bool:
    """Every chunk of a job with a result is counted, and the result is still to be made."""
    if state is None or not state.get("awaitsResult") or has_current_result(state):
        return False
    if not _all_counted(state):
        return False
    return not _replaying(state) and status_of(state) == "active"


def _all_counted(state: State) -> bool:
    """Every chunk of an API-split job counted; every record an upstream job's end (a batch's
    end message, a standing job's close) said."""
    if state.get("upstream"):
        return bool(state.get("ended")) and state["records"] >= state["totalRecords"]
    return state["totalChunks"] is not None and state["chunksDone"] >= state["totalChunks"]


def status_of(state: State | None) -> str:
    """queued → active → completed; failed when the split broke off or stopOnError met a failed
    record; cancelled when a cancelled job's last chunk is accounted for. A job with a result
    stays active after its last chunk until the result is made (failed if it cannot be). An
    upstream job ends at its batch's end count, or when its day closes (upstream_ends.py)."""
    if state is None:
        return "queued"
    if state["error"]:
        return "failed"
    if _replaying(state):
        return "active"
    if _all_counted(state):
        if state.get("stopped") == "cancelled":
            return "cancelled"
        if state["options"].get("stopOnError") and state["failed"]:
            return "failed"
        if state.get("awaitsResult"):
            if not has_current_result(state):
                return "active"
            if state.get("resultError"):
                return "failed"
        return "completed"
    if state["chunksDone"] > 0 or state.get("waiting"):
        return "active"
    return "queued"
