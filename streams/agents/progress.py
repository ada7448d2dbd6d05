"""The progress agent: fold progress events into the job-progress table, once each; the job
registry's status rows follow (streams/agents/status.py), results are made for jobs that have
one (streams/agents/finish.py) and standing jobs close after their day (streams/agents/
standing.py)."""

from __future__ import annotations

import logging
from typing import Any

from streams import logs
from streams.agents.finish import JobFinisher
from streams.agents.outcomes import OutcomePublisher, status_change
from streams.agents.standing import StandingCloser
from streams.agents.status import StatusRecorder
from streams.deadletter import dead_letter
from streams.exceptions import PoisonMessage
from streams.progress import FINISHED, apply_event
from streams.runtime import Runtime
from streams.wire.events import JOB_REMOVED, decode_event

log = logging.getLogger(__name__)


class ProgressFolder:
    def __init__(
        self,
        runtime: Runtime,
        finisher: JobFinisher,
        recorder: StatusRecorder,
        closer: StandingCloser,
    ):
        self.runtime = runtime
        self.table = runtime.progress_table
        self.outcomes = OutcomePublisher(runtime)
        self.finisher = finisher  # results of jobs that have one, e.g. an export's file
        self.closer = closer  # standing jobs, closed after their day
        self.recorder = recorder  # the registry's status rows; the event is done through it

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
            self.runtime.commit_guard.done(message.tp, message.offset)
            return
        table = self.table
        if progress.kind == JOB_REMOVED:  # expired or deleted: nothing of it is kept
            if progress.job_id in table:
                del table[progress.job_id]
            self.recorder.removed(progress.job_id)
            self.closer.consider(progress.job_id, None)
            self.runtime.commit_guard.done(message.tp, message.offset)
            return
        current = table.get(progress.job_id)
        updated = apply_event(
            current, progress.job_id, progress.at_ms, progress.kind, progress.body
        )
        if updated is not current:
            # before the table: a state written to its changelog would not change again when
            # the event is read again after a crash, and its outcome would never be sent
            await self.outcomes.changed(progress.job_id, current, updated, progress.at_ms)
            table[progress.job_id] = updated
            change = status_change(current, updated)
            if change is not None and change[1] in FINISHED:
                logs.job_finished(progress.job_id, change[1], updated)
        self.recorder.folded(progress.job_id, updated, message)
        self.finisher.consider(progress.job_id, updated)
        self.closer.consider(progress.job_id, updated)


def register(runtime: Runtime, finisher: JobFinisher, closer: StandingCloser) -> None:
    recorder = StatusRecorder(runtime)
    folder = ProgressFolder(runtime, finisher, recorder, closer)
    state, guard = runtime.state, runtime.commit_guard

    @runtime.app.task
    async def record_statuses() -> None:
        await recorder.run()

    @runtime.app.agent(runtime.progress_topic, name="aggregate-progress")
    async def aggregate_progress(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            state.touch()
            guard.begin(message.tp, message.offset)
            await folder.fold(message)  # done when its job's status row says what it says
