"""The outcome publisher: each status change of a job, as an event on the outcome topic
(streams/wire/outcomes.py), for systems that consume rather than poll."""

from __future__ import annotations

import asyncio
import logging

from streams.progress import State
from streams.retry import backoff_delay
from streams.runtime import Runtime
from streams.wire.outcomes import outcome_event, status_change

log = logging.getLogger(__name__)


class OutcomePublisher:
    """Each status change of a job, on the outcome topic, acknowledged before the job's new
    state is written and its progress event may be committed (a crash in between sends it
    again: at least once)."""

    def __init__(self, runtime: Runtime):
        self.topic = runtime.outcome_topic

    async def changed(self, job_id: str, current: State | None, updated: State, at_ms: int) -> None:
        change = status_change(current, updated)
        if change is None:
            return
        value = outcome_event(job_id, updated, change[0], at_ms)
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
