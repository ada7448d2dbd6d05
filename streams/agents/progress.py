"""The progress agent: fold progress events into the job-progress table, once each."""

from __future__ import annotations

import logging
from typing import Any

from streams.app import Sluice
from streams.deadletter import dead_letter
from streams.events import decode_event
from streams.exceptions import PoisonMessage
from streams.progress import apply_event

log = logging.getLogger(__name__)


def register(sluice: Sluice) -> None:
    table = sluice.progress_table
    state = sluice.state
    guard = sluice.commit_guard

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
        current = table.get(progress.job_id)
        updated = apply_event(
            current, progress.job_id, progress.at_ms, progress.kind, progress.body
        )
        if updated is not current:
            table[progress.job_id] = updated

    @sluice.app.agent(sluice.progress_topic, name="aggregate-progress")
    async def aggregate_progress(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            state.touch()
            guard.begin(message.tp, message.offset)
            await fold(message)
            guard.done(message.tp, message.offset)
