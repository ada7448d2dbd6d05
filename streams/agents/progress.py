"""The progress agent: fold progress events into the job-progress table, once each."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from streams.agents.finish import attach as attach_finisher
from streams.app import Sluice
from streams.deadletter import dead_letter
from streams.events import JOB_REMOVED, decode_event
from streams.exceptions import PoisonMessage
from streams.failures import backoff_delay
from streams.progress import apply_event, status_of
from streams.retention import expires_at, from_ms
from streams.sink import jobs as job_registry

log = logging.getLogger(__name__)
STATUS_ATTEMPTS = 5


def register(sluice: Sluice) -> None:
    table = sluice.progress_table
    state = sluice.state
    guard = sluice.commit_guard
    finisher = attach_finisher(sluice)  # results of jobs that have one, e.g. an export's file

    async def fold(message: Any) -> None:
        try:
            progress = decode_event(message.value)
        except PoisonMessage as exc:
            # nothing to count it against; park it and keep the partition flowing
            log.error(
                "dead-lettering unreadable progress event %s[%d]@%d: %s",
                message.topic,
                message.partition,
                message.offset,
                exc,
            )
            await dead_letter(sluice.app.producer, message, exc)
            return
        if progress.kind == JOB_REMOVED:  # expired or deleted: nothing of it is kept
            if progress.job_id in table:
                del table[progress.job_id]
            return
        current = table.get(progress.job_id)
        updated = apply_event(
            current, progress.job_id, progress.at_ms, progress.kind, progress.body
        )
        if updated is not current:
            table[progress.job_id] = updated
            await record_status(progress.job_id, current, updated)
        finisher.consider(progress.job_id, updated)

    async def record_status(job_id: str, before: Any, after: Any) -> None:
        """Keep the registry's status and expiry in step (listings, retention)."""
        status = status_of(after)
        if before is not None and (status_of(before), before["completedAt"]) == (
            status,
            after["completedAt"],
        ):
            return
        completed = from_ms(after["completedAt"])
        expiry = expires_at(sluice.settings, status, completed)
        loop = asyncio.get_running_loop()
        for attempt in range(1, STATUS_ATTEMPTS + 1):
            try:
                await loop.run_in_executor(
                    None,
                    job_registry.record_status,
                    sluice.engine,
                    job_id,
                    status,
                    completed,
                    expiry,
                )
                return
            except Exception as exc:  # the view is right regardless; listings and expiry wait
                log.warning("status of job %s not recorded (attempt %d): %s", job_id, attempt, exc)
                await asyncio.sleep(backoff_delay(attempt))
        log.error(
            "status of job %s not recorded: it is not listed or expired as %s", job_id, status
        )

    @sluice.app.agent(sluice.progress_topic, name="aggregate-progress")
    async def aggregate_progress(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            state.touch()
            guard.begin(message.tp, message.offset)
            await fold(message)
            guard.done(message.tp, message.offset)
