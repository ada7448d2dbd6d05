"""Job results: once every chunk of a job whose type has a result is counted, make the result.

The progress agent calls `JobFinisher.consider` after folding each event. When a job awaits its
result (streams.progress.awaits_result), `JobType.finish` runs in a thread (an export's file is
assembled off the event loop) and its result, or after `MAX_ATTEMPTS` failures its error, goes to
the progress topic as `ResultReady` with the counts it was made from; folding it completes (or
fails) the job. A worker that dies before that leaves the job awaiting its result in the table:
the next owner of its progress partition finds it after recovery and makes it again
(`finish` is idempotent; a second `ResultReady` for the same counts changes nothing).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from streams.agents.rescans import rescan_when_jobs_move
from streams.jobtypes import JOB_TYPES
from streams.jobtypes.base import JobType
from streams.ownership import owns
from streams.progress import State, awaits_result, result_basis
from streams.retry import retrying
from streams.runtime import Runtime
from streams.sink.faults import database_away
from streams.wire import events

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
RESCAN_INTERVAL = 2.0
RESCANS = 3  # timer ticks that look for waiting jobs after an assignment or a recovery


class JobFinisher:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.running: set[str] = set()
        self._rescans = RESCANS

    def consider(self, job_id: str, state: State | None) -> None:
        """Start making the job's result if it awaits one and none is being made here."""
        if job_id in self.running or not awaits_result(state):
            return
        assert state is not None
        job_type = JOB_TYPES.get(state["type"])
        if job_type is None or not job_type.has_result:
            return
        self.running.add(job_id)
        self.runtime.state.results_in_flight += 1
        basis = result_basis(state)
        self.runtime.app.add_future(self._finish(job_type, job_id, dict(state["options"]), basis))

    async def _finish(
        self, job_type: JobType, job_id: str, options: dict[str, Any], basis: str
    ) -> None:
        try:
            event = await self._make_result(job_type, job_id, options, basis)
            # the result is kept: publishing it is tried until the broker takes it
            async for attempt in retrying(None, f"publishing the result of job {job_id}"):
                with attempt:
                    delivery = await self.runtime.progress_topic.send(key=job_id, value=event)
                    await delivery
        finally:
            self.running.discard(job_id)
            self.runtime.state.results_in_flight -= 1
            self.runtime.state.touch()

    async def _make_result(
        self, job_type: JobType, job_id: str, options: dict[str, Any], basis: str
    ) -> bytes:
        """The `ResultReady` event: the result, or after MAX_ATTEMPTS failures the error."""
        started = time.perf_counter()
        try:
            what = f"making the result of job {job_id}"
            async for attempt in retrying(MAX_ATTEMPTS, what, waits_for=database_away):
                with attempt:
                    result = await asyncio.to_thread(
                        job_type.finish, self.runtime.engine, job_id, options
                    )
        except Exception as exc:
            log.exception("job %s: no result after %d attempts", job_id, MAX_ATTEMPTS)
            return events.result_ready(job_id, basis, error=f"{type(exc).__name__}: {exc}")
        log.info("job %s: result made in %.2f s", job_id, time.perf_counter() - started)
        return events.result_ready(job_id, basis, result=result)

    def rescan_soon(self) -> None:
        self._rescans = RESCANS

    def rescan(self) -> None:
        """Jobs of this worker's progress partitions still awaiting their result (their last
        outcome was folded by a worker that stopped before publishing the result)."""
        app = self.runtime.app
        if self._rescans <= 0 or app.rebalancing or app.in_recovery:
            return
        self._rescans -= 1
        for job_id, state in list(self.runtime.progress_table.items()):
            if job_id not in self.running and awaits_result(state) and owns(app, job_id):
                self.consider(job_id, state)


def attach(runtime: Runtime) -> JobFinisher:
    """The finisher the progress agent calls, with its look-out for jobs left waiting."""
    finisher = JobFinisher(runtime)

    @runtime.app.timer(RESCAN_INTERVAL)
    async def finish_waiting_jobs() -> None:
        finisher.rescan()

    rescan_when_jobs_move(runtime, finisher.rescan_soon)
    return finisher
