"""What the job registry keeps of a job's progress, so that a finished job outlives the broker.

A job's progress state lives in the job-progress table, a Faust table whose changelog is on
Kafka: a broker that loses its data (the memory-only dev broker, restarted) takes every state
with it. So when a job finishes, the status recorder (streams/agents/status.py) also writes its
state to the job's registry row (`sluice_jobs.kept_state`), without the bookkeeping only folding
needs (which chunks were counted, which wait): its counts, times, summary and result. For a
finished job the registry is the durable truth: a status lookup answers from the kept state when
the table does not hold the job, or holds an emptier state than the one kept (`answering`): one
that counted fewer chunks, or was never announced — made from events sent after the broker's
data was lost.

A job the broker lost is settled from what the database holds of it (`settled_state`): the chunks
the ledger says were applied, the dead-lettered chunks whose failed records the results table
holds, and, for a job lost unfinished, the reason (streams/worker/broker_loss.py).

Pure: the registry row is read and written elsewhere.
"""

from __future__ import annotations

import json
from typing import Any

from streams.clock import to_ms
from streams.progress import ERROR_SAMPLE_SIZE, FINISHED, State, new_state
from streams.sink.jobs import CANCELLED, STOPPED, JobRecord
from streams.sink.lost import Applied

BOOKKEEPING = ("seen", "waiting")
LOST_REASON = (
    "the broker lost this job's messages (restart of the dev broker?): it stopped with what "
    "was applied before; its per-record results are kept; resubmit the rest"
)


def kept_of(state: State) -> dict[str, Any]:
    """A finished state as the registry keeps it."""
    kept = {name: value for name, value in state.items() if name not in BOOKKEEPING}
    # which chunks are dead-lettered matters only to fold their replay; how many, to people
    kept["deadLetters"] = {key: {} for key in state.get("deadLetters", {})}
    return kept


def kept_text(state: State, status: str) -> str | None:
    """The kept state as the registry row stores it (JSON): for a finished job only."""
    return as_text(kept_of(state)) if status in FINISHED else None


def as_text(kept: dict[str, Any]) -> str:
    return json.dumps(kept, sort_keys=True, separators=(",", ":"))


def restore(job_id: str, kept: dict[str, Any]) -> State:
    """A progress state from a kept one: it answers status lookups, it is never folded."""
    return {**new_state(job_id), **kept, "seen": {}, "waiting": {}}


def answering(job: JobRecord | None, state: State | None) -> tuple[State | None, bool]:
    """The state a status lookup answers from, and whether it is the registry's kept one: the
    table's, unless the registry keeps the finished state of a job the table lost."""
    kept = None if job is None else job.kept_state
    if job is None or kept is None or job.status not in FINISHED:
        return state, False
    emptier = (
        state is None
        or state["chunksDone"] < kept.get("chunksDone", 0)
        or (state.get("acceptedAt") is None and kept.get("acceptedAt") is not None)
    )
    return (restore(job.id, kept), True) if emptier else (state, False)


def settled_state(
    job: JobRecord, applied: Applied, error: str | None, completed_ms: int | None
) -> dict[str, Any]:
    """The kept state of a job the broker lost, from what the database holds: its applied
    chunks' counts, its dead-lettered chunks' records as failed, the first failed records."""
    dead_records = sum(applied.dead_chunks.values())
    state = new_state(job.id)
    state.update(applied.counts)
    state.update(
        type=job.type,
        tenant=job.tenant,
        options=job.options,
        acceptedAt=to_ms(job.created_at),
        startedAt=to_ms(applied.first_applied),
        completedAt=completed_ms,
        totalRecords=job.total_records,
        totalChunks=job.total_chunks,
        chunksDone=applied.chunks + len(applied.dead_chunks),
        records=applied.counts["records"] + dead_records,
        failed=applied.counts["failed"] + dead_records,
        deadLettered=dead_records,
        deadLetters={f"chunk:{index}": {} for index in sorted(applied.dead_chunks)},
        errors=applied.errors[:ERROR_SAMPLE_SIZE],
        error=error,
        stopped=job.stopped if job.stopped in (CANCELLED, STOPPED) else None,
    )
    return kept_of(state)
