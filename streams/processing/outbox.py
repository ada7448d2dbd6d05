"""What leaves the chunk processor: a chunk's outcome on the progress topic, or its dead letter.

Both wait for the broker's acknowledgement: the chunk's offset may be committed right after.
A dead-lettered chunk of a job also counts: its records' results say where they are (failed,
until a replay applies them) and an outcome with `deadLettered` counts them as failed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import Engine

from streams.deadletter import dead_letter, sanitize
from streams.models import ChunkInfo, ChunkResult, RecordFailure
from streams.processing.parking import Parked
from streams.processing.policy import Failure
from streams.retry import retrying
from streams.sink.faults import database_away
from streams.sink.results import record_dead_lettered
from streams.wire import events

log = logging.getLogger(__name__)
RESULT_ATTEMPTS = 3


class Outbox:
    def __init__(self, app: Any, progress_topic: Any, engine: Engine):
        self._app = app  # its producer exists once the app runs
        self._progress_topic = progress_topic
        self._engine = engine

    async def outcome(
        self, info: ChunkInfo, result: ChunkResult, *, dead_lettered: bool = False
    ) -> None:
        value = events.chunk_outcome(info, result, dead_lettered=dead_lettered)
        delivery = await self._progress_topic.send(key=info.job_id, value=value)
        await delivery

    async def waiting(self, info: ChunkInfo, failure: Failure) -> None:
        """The chunk waits for the database: its job says so until the chunk's outcome."""
        value = events.chunk_waiting(info, "database", sanitize(str(failure)))
        delivery = await self._progress_topic.send(key=info.job_id, value=value)
        await delivery

    async def dead_letter(self, entry: Parked, failure: Failure) -> None:
        """The chunk's message to its dead-letter topic; for a chunk of a job, its records as
        failed (results and outcome), unless the failure does not count in the job."""
        info = entry.info
        await dead_letter(
            self._app.producer,
            entry.message,
            failure,
            attempts=entry.attempts,
            first_failure_ms=entry.first_failure_ms,
            job_id=info.job_id if info else None,
            chunk_index=info.chunk_index if info else None,
            tenant=info.tenant if info else None,
        )
        if info is None or not failure.counts_in_job:
            return  # no job, or a chunk reusing a job's (job, chunk) pair: that outcome stands
        # the job's records are neither lost nor successful: they count as failed
        reason = f"chunk dead-lettered: {failure.error_class}"
        rows = await self._keep_dead_lettered_results(info, reason)
        result = ChunkResult(records=len(rows))
        for row in rows:
            result.fail(RecordFailure(row, None, reason))
        await self.outcome(info, result, dead_lettered=True)

    async def _keep_dead_lettered_results(self, info: ChunkInfo, reason: str) -> list[int]:
        """The records' outcomes say where they are; a replay that applies them replaces these.
        The rows this chunk counts as failed: all of them when the database cannot say."""
        what = f"results of dead-lettered chunk {info.chunk_index} (job {info.job_id})"
        try:
            async for attempt in retrying(RESULT_ATTEMPTS, what, waits_for=database_away):
                with attempt:
                    return await asyncio.to_thread(
                        record_dead_lettered,
                        self._engine,
                        info.job_id,
                        info.chunk_index,
                        info.rows,
                        reason,
                    )
        except Exception:  # the database is what failed the chunk, perhaps
            log.error("%s lost", what)
        return list(info.rows)
