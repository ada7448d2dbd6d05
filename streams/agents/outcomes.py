"""The outcome publisher: each status change of a job, as an event on the outcome topic
(streams/wire/outcomes.py), for systems that consume rather than poll."""

from __future__ import annotations

import asyncio
import logging

from streams.progress import FINISHED, State, status_of
from streams.retry import backoff_delay
from streams.runtime import Runtime
from streams.sink import jobs as job_registry
from streams.sink.faults import database_away
from streams.wire.outcomes import outcome_event

log = logging.getLogger(__name__)
MAX_REMEMBERED = 10_000


def status_change(current: State | None, updated: State) -> tuple[str | None, str] | None:
    """(before, after) when folding an event changed the job's status (a new job counts as a
    change to its first status); None otherwise."""
    before = None if current is None else status_of(current)
    after = status_of(updated)
    return None if before == after else (before, after)


class OutcomePublisher:
    """Each status change of a job, on the outcome topic, acknowledged before the job's new
    state is written and its progress event may be committed (a crash in between sends it
    again: at least once)."""

    def __init__(self, runtime: Runtime):
        self.topic = runtime.outcome_topic
        self.engine = runtime.engine
        self._batches: dict[str, str | None] = {}

    async def _batch_of(self, job_id: str) -> str | None:
        """The job's batch id, from the registry (None for API jobs, or while it is away)."""
        if job_id not in self._batches:
            try:
                job = await asyncio.to_thread(job_registry.get_job, self.engine, job_id)
            except Exception as exc:
                if not database_away(exc):
                    raise
                return None
            if len(self._batches) > MAX_REMEMBERED:
                self._batches.clear()
            self._batches[job_id] = job.batch_id if job is not None else None
        return self._batches[job_id]

    async def changed(self, job_id: str, current: State | None, updated: State, at_ms: int) -> None:
        change = status_change(current, updated)
        if change is None:
            return
        batch = await self._batch_of(job_id)
        value = outcome_event(job_id, updated, (*change, change[1] in FINISHED), at_ms, batch)
        attempt = 0
        while True:  # Kafka away: so is every other topic; wait for it here, visibly
            try:
                delivery = await self.topic.send(key=job_id.encode(), value=value)
                await delivery
                return
            except Exception as exc:
                attempt += 1
                log.warning("outcome of job %s not sent yet (%s); trying again", job_id, exc)
                await asyncio.sleep(backoff_delay(attempt))
