"""The job registry's status kept in step with the progress table (listings and retention read
it there), without holding up the progress agent while the database is away.

The progress agent hands every folded event to `StatusRecorder.folded`. When the job's status
row already says what its state says, the event is done at once. Otherwise the write is queued
(a job's latest state wins) and a background task makes it, waiting out a database that is
away; the event's offset is done only once its write is made, so a worker that stops first
reads the event again, and (its memory of what the registry holds starting empty) writes it
again. Meanwhile the agent goes on folding: status lookups, which read the table, stay current.
A finished job's row also keeps its state (streams/kept.py): the truth once the table lost it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from streams.clock import from_ms
from streams.kept import kept_text
from streams.progress import State, status_of
from streams.retention import expires_at
from streams.retry import retrying
from streams.runtime import Runtime
from streams.sink import jobs as job_registry
from streams.sink.faults import database_away

log = logging.getLogger(__name__)
STATUS_ATTEMPTS = 5

#: what a job's registry row says: status, completion (epoch ms), totals (None: left as they
#: are), and once finished the kept state (JSON: streams/kept.py)
Row = tuple[str, int | None, tuple[int | None, int | None] | None, str | None]


def row_of(state: State) -> Row:
    totals: tuple[int | None, int | None] | None = None
    if state.get("upstream"):  # known once it ended (unknown again when a standing job reopens)
        ended = state.get("ended")
        totals = (state["totalRecords"], state["chunksDone"]) if ended else (None, None)
    elif state["totalChunks"] is not None:
        totals = (state["totalRecords"], state["totalChunks"])
    status = status_of(state)
    return status, state["completedAt"], totals, kept_text(state, status)


class StatusRecorder:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.recorded: dict[str, Row] = {}  # as far as this process knows the registry
        self.pending: dict[str, tuple[Row, list[Any]]] = {}  # job → row to write, its events
        self._wake = asyncio.Event()

    def folded(self, job_id: str, state: State, message: Any) -> None:
        row = row_of(state)
        if self.recorded.get(job_id) == row and job_id not in self.pending:
            self._done(message)
            return
        _, messages = self.pending.get(job_id, (row, []))
        self.pending[job_id] = (row, [*messages, message])
        self._wake.set()

    def removed(self, job_id: str) -> None:
        self.recorded.pop(job_id, None)

    def _done(self, message: Any) -> None:
        self.runtime.commit_guard.done(message.tp, message.offset)

    async def run(self) -> None:
        """Write what is pending, job by job, for as long as the worker runs."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.pending:
                job_id = next(iter(self.pending))
                row, messages = self.pending.pop(job_id)
                if await self._write(job_id, row):
                    self.recorded[job_id] = row
                for message in messages:
                    self._done(message)

    async def _write(self, job_id: str, row: Row) -> bool:
        status, completed_ms, totals, kept = row
        completed = from_ms(completed_ms)
        expiry = expires_at(self.runtime.settings, status, completed)
        what = f"status of job {job_id}"
        try:
            async for attempt in retrying(STATUS_ATTEMPTS, what, waits_for=database_away):
                with attempt:
                    await asyncio.to_thread(
                        job_registry.record_status,
                        self.runtime.engine,
                        job_id,
                        status,
                        completed,
                        expiry,
                        totals,
                        kept,
                    )
        except Exception:  # the table is right regardless; only listings and expiry wait
            log.exception("status of job %s not recorded: it is not listed as %s", job_id, status)
            return False
        return True
