"""The outcome publisher: each status change of a job, as an event on the outcome topic
(streams/wire/outcomes.py), for systems that consume rather than poll.

Each event is in its job's form (JSON or Avro), read with its batch id from the job's registry
row (which worker opened the job does not matter). A topic batch whose form is not settled yet
(its begin named none and no record of it has been read) tells no `queued` status: its first
event comes once a record settled the form. A job the registry does not hold, or any job while
the database is away, gets JSON (and no batch id).
"""

from __future__ import annotations

import asyncio
import logging

from streams.progress import FINISHED, State, status_of
from streams.retry import backoff_delay
from streams.runtime import Runtime
from streams.sink import jobs as job_registry
from streams.sink.faults import database_away
from streams.wire.outcomes import JSON, outcome_event, outcome_headers

log = logging.getLogger(__name__)
MAX_REMEMBERED = 10_000

#: a job's batch id and outcome form (None: a topic batch's form is not settled yet)
Known = tuple[str | None, str | None]


def status_change(current: State | None, updated: State) -> tuple[str | None, str] | None:
    """(before, after) when folding an event changed the job's status (a new job counts as a
    change to its first status); None otherwise."""
    before = None if current is None else status_of(current)
    after = status_of(updated)
    return None if before == after else (before, after)


def known_of(job: job_registry.JobRecord | None) -> Known:
    """What the registry row says of the job's outcome events."""
    if job is None:  # not registered yet: a batch's end read before its begin and records
        return None, None
    if job.outcome_format is None and job.origin == job_registry.TOPIC and job.batch_id:
        return job.batch_id, None
    return job.batch_id, job.outcome_format or JSON


class OutcomePublisher:
    """Each status change of a job, on the outcome topic, acknowledged before the job's new
    state is written and its progress event may be committed (a crash in between sends it
    again: at least once)."""

    def __init__(self, runtime: Runtime):
        self.topic = runtime.outcome_topic
        self.engine = runtime.engine
        self._known: dict[str, Known] = {}

    async def _known_of(self, job_id: str) -> Known:
        """The job's batch id and form, from the registry, remembered once the form is settled
        (a status change is rare: an unsettled one is asked again)."""
        if job_id not in self._known:
            try:
                job = await asyncio.to_thread(job_registry.get_job, self.engine, job_id)
            except Exception as exc:
                if not database_away(exc):
                    raise
                return None, JSON
            known = known_of(job)
            if known[1] is None:
                return known
            if len(self._known) > MAX_REMEMBERED:
                self._known.clear()
            self._known[job_id] = known
        return self._known[job_id]

    async def changed(self, job_id: str, current: State | None, updated: State, at_ms: int) -> None:
        change = status_change(current, updated)
        if change is None:
            return
        batch, form = await self._known_of(job_id)
        if form is None:
            if change[1] == "queued":
                return  # in a form the producer did not choose yet: its records will
            form = JSON  # a batch without records
        final = change[1] in FINISHED
        value = outcome_event(job_id, updated, (*change, final), at_ms, batch, form)
        attempt = 0
        while True:  # Kafka away: so is every other topic; wait for it here, visibly
            try:
                delivery = await self.topic.send(
                    key=job_id.encode(), value=value, headers=outcome_headers(form)
                )
                await delivery
                return
            except Exception as exc:
                attempt += 1
                log.warning("outcome of job %s not sent yet (%s); trying again", job_id, exc)
                await asyncio.sleep(backoff_delay(attempt))
