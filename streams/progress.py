"""A job's progress state, how each progress event changes it exactly once, and its status view.

The state lives in a Faust table keyed by job id (streams/agents/progress.py) and is a plain
JSON-able dict. Chunk outcomes may be delivered more than once (at-least-once everywhere), so
the state remembers which chunks it has counted: per partition, the next expected
`partitionSeq` plus the few seen out of order. A partition's chunks are processed in order, so
this stays a handful of integers per partition however large the job is. Dead-lettered chunks
are also kept by key with their counts, so the outcome of a replayed chunk replaces theirs
exactly once.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

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
        "seen": {},
        "unknownColumns": [],
        "errors": [],
        "error": None,
        "stopped": None,
        "deadLetters": {},
    }


def _first_sighting(state: State, partition: int, seq: int) -> bool:
    """Mark (partition, seq) as counted; False when it was counted before."""
    seen = state["seen"]
    next_seq, pending = seen.get(str(partition), (0, []))
    if seq < next_seq or seq in pending:
        return False
    pending = [*pending, seq]
    while next_seq in pending:
        pending.remove(next_seq)
        next_seq += 1
    seen[str(partition)] = [next_seq, sorted(pending)]
    return True


def apply_event(state: State | None, job_id: str, at_ms: int, kind: str, body: dict) -> State:
    """The state after one progress event; returns `state` itself when nothing changed."""
    current = new_state(job_id) if state is None else state
    updated = json.loads(json.dumps(current))  # a deep copy: the table sees a new value
    if kind == "sluice.JobAccepted":
        updated.update(
            type=body["jobType"],
            tenant=body["tenant"],
            options=json.loads(body["options"]),
            acceptedAt=updated["acceptedAt"] or at_ms,
        )
    elif kind == "sluice.SplitCompleted":
        if updated["totalChunks"] is not None:
            return current
        updated.update(
            totalRecords=body["totalRecords"],
            totalChunks=body["totalChunks"],
            unknownColumns=list(body["unknownColumns"]),
        )
    elif kind == "sluice.SplitFailed":
        updated.update(error=body["reason"])
    elif kind == "sluice.ChunkOutcome":
        key = f"{body['partition']}:{body['partitionSeq']}"
        parked = updated.setdefault("deadLetters", {})
        if key in parked and not body.get("deadLettered"):
            # a dead-lettered chunk applied after all (replayed): its outcome replaces the one
            # that counted its records as failed; later copies of either are duplicates
            old = parked.pop(key)
            for name in COUNTS:
                updated[name] += body[name] - old[name]
            updated["deadLettered"] -= old["records"]
            return updated
        if not _first_sighting(updated, body["partition"], body["partitionSeq"]):
            return current
        for name in COUNTS:
            updated[name] += body[name]
        if body.get("deadLettered"):
            updated["deadLettered"] += body["records"]
            parked[key] = {name: body[name] for name in COUNTS}
        if body.get("stopped") and not updated.get("stopped"):
            updated["stopped"] = body["stopped"]
        updated["chunksDone"] += 1
        updated["startedAt"] = updated["startedAt"] or at_ms
        room = ERROR_SAMPLE_SIZE - len(updated["errors"])
        updated["errors"].extend(body["errors"][: max(room, 0)])
    else:
        return current
    if updated["completedAt"] is None and status_of(updated) in FINISHED:
        updated["completedAt"] = at_ms
    return updated


def status_of(state: State | None) -> str:
    """queued → active → completed; failed when the split broke off or stopOnError met a failed
    record; cancelled when a cancelled job's last chunk is accounted for."""
    if state is None:
        return "queued"
    if state["error"]:
        return "failed"
    if state["totalChunks"] is not None and state["chunksDone"] >= state["totalChunks"]:
        if state.get("stopped") == "cancelled":
            return "cancelled"
        if state["options"].get("stopOnError") and state["failed"]:
            return "failed"
        return "completed"
    if state["chunksDone"] > 0:
        return "active"
    return "queued"


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def _stop_message(status: str, state: State) -> str | None:
    if status == "failed" and state["options"].get("stopOnError"):
        return "stopped at the first failed record (stopOnError); the rest was skipped"
    if status == "cancelled":
        return "cancelled; records not applied before the cancellation were skipped"
    return None


def status_view(job_id: str, job_type: str, state: State | None, total: int | None) -> dict:
    """The answer of GET /api/batch/jobs/{id}."""
    s = state or new_state(job_id)
    status = status_of(state)
    total_records = s["totalRecords"] if s["totalRecords"] is not None else total
    processed = s["records"]
    if total_records:
        percentage = round(100.0 * processed / total_records, 2)
    else:
        percentage = 100.0 if status == "completed" else 0.0
    return {
        "jobId": job_id,
        "type": s["type"] or job_type,
        "status": status,
        "progress": {
            "percentage": percentage,
            "processed": processed,
            "total": total_records,
            "successful": s["successful"],
            "failed": s["failed"],
            "skipped": s["skipped"],
            "currentChunk": s["chunksDone"],
            "totalChunks": s["totalChunks"],
        },
        "startedAt": _iso(s["startedAt"]),
        "completedAt": _iso(s["completedAt"]),
        "error": s["error"] or _stop_message(status, s),
        "summary": {
            "created": s["created"],
            "updated": s["updated"],
            "deadLettered": s["deadLettered"],
            "unknownColumns": s["unknownColumns"],
            "errors": sorted(s["errors"], key=lambda e: e["row"]),
        },
    }
