"""The progress agent: fold progress events into the job-progress table, once each, and keep
the job registry's status in step (listings and retention read it there)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from streams.agents.finish import JobFinisher
from streams.clock import from_ms
from streams.deadletter import dead_letter
from streams.exceptions import PoisonMessage
from streams.progress import apply_event, status_of
from streams.retention import expires_at
from streams.retry import retrying
from streams.runtime import Runtime
from streams.sink import jobs as job_registry
from streams.wire.events import JOB_REMOVED, decode_event

log = logging.getLogger(__name__)
STATUS_ATTEMPTS = 5


class ProgressFolder:
    def __init__(self, runtime: Runtime, finisher: JobFinisher):
        self.runtime = runtime
        self.table = runtime.progress_table
        self.finisher = finisher  # results of jobs that have one, e.g. an export's file

    async def fold(self, message: Any) -> None:
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
            await dead_letter(self.runtime.app.producer, message, exc)
            return
        table = self.table
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
            await self.record_status(progress.job_id, current, updated)
        self.finisher.consider(progress.job_id, updated)

    async def record_status(self, job_id: str, before: Any, after: Any) -> None:
        """Keep the registry's status and expiry in step (listings, retention)."""
        status = status_of(after)
        if before is not None and (status_of(before), before["completedAt"]) == (
            status,
            after["completedAt"],
        ):
            return
        completed = from_ms(after["completedAt"])
        expiry = expires_at(self.runtime.settings, status, completed)
        try:
            async for attempt in retrying(STATUS_ATTEMPTS, f"status of job {job_id}"):
                with attempt:
                    await asyncio.to_thread(
                        job_registry.record_status,
                        self.runtime.engine,
                        job_id,
                        status,
                        completed,
                        expiry,
                    )
        except Exception:  # the view is right regardless; listings and expiry wait
            log.error(
                "status of job %s not recorded: it is not listed or expired as %s", job_id, status
            )


def register(runtime: Runtime, finisher: JobFinisher) -> None:
    folder = ProgressFolder(runtime, finisher)
    state, guard = runtime.state, runtime.commit_guard

    @runtime.app.agent(runtime.progress_topic, name="aggregate-progress")
    async def aggregate_progress(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            state.touch()
            guard.begin(message.tp, message.offset)
            await folder.fold(message)
            guard.done(message.tp, message.offset)
