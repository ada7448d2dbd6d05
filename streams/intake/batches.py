"""The jobs the intake feeds: opened once per worker process, with their options.

A batch's options are its `begin` message's. Records of a batch whose `begin` is not known yet
are held (not split) for up to SLUICE_BATCH_WAIT seconds from the first of them, so that a
`begin` read a little later from another partition still names them; then the batch opens with
the job type's default options. A `begin` read after its batch opened with other options is
refused (a dead letter saying so). A batch's job is one registry row, made by whichever worker
opens it first; every worker then reads the options from that row. Records without a batch join
the standing job of their day, opened at once with default options. A standing job whose day is
over is forgotten once it takes no record for a while: a late record of its day opens it again
(announced again, its registry row made anew if retention removed the job meanwhile).

The form of a job's outcome events (JSON or Avro) is settled once, on its registry row, by the
first message that chooses one (`choice_of`): the message that opens the job, or else (a begin
naming none) the first record a worker gathers for it, before its chunk is sent. A begin naming
another form than the one settled is refused, as one with other options is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from streams.clock import now_ms
from streams.exceptions import OptionError
from streams.intake.days import day_of
from streams.intake.messages import IntakeMessage, Refused, choice_of
from streams.jobtypes import JOB_TYPES
from streams.jobtypes.base import JobType
from streams.progress import FINISHED
from streams.runtime import Runtime
from streams.sink import jobs as job_registry
from streams.sink.removed_batches import was_removed
from streams.wire import events
from streams.wire.outcomes import JSON, batch_reused_event, outcome_headers

log = logging.getLogger(__name__)


@dataclass
class OpenJob:
    job_id: str
    tenant: str
    job_type: JobType
    batch: str | None
    options: dict[str, Any]
    day: str | None = None  # a standing job's UTC day
    used: float = field(default_factory=time.monotonic)  # when it last took a record
    outcome_format: str | None = None  # as settled on its row; None: not yet
    removed: bool = False  # a batch whose job was removed: nothing more is applied to it


REMOVED = "removed"  # the final status of a batch whose job was removed, in batchReused events
LOOK_EVERY_SECONDS = 0.1  # how often a waiting batch's registry row is looked for
ASK_FINISHED_EVERY_SECONDS = 1.0  # how often an open batch's job is asked if it finished
FORGET_AFTER_SECONDS = 60.0  # a standing job of a day over, taking no record: forgotten


class Batches:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.wait = runtime.settings.batch_wait
        self.open: dict[str, OpenJob] = {}
        self._first_seen: dict[str, float] = {}
        self._looked: dict[str, float] = {}  # when the registry was last asked for a batch
        self._finished: dict[str, str] = {}  # batches whose job finished: their status
        self._asked: dict[str, float] = {}  # when the registry was last asked if it finished

    async def begin(self, message: IntakeMessage) -> None:
        """A batch's `begin`: open its job with these options; Refused if it opened with
        others (its records came first, and waited longer than SLUICE_BATCH_WAIT)."""
        job_type = JOB_TYPES[message.job_type]
        try:
            options = job_type.parse_options(message.options)
        except OptionError as exc:
            raise Refused(f"the begin message's options: {exc}") from None
        job = await self._open(message, options)
        if job.removed:
            await self.finished(job)  # answered by an outcome event
            return
        if job.options != options:
            raise Refused(
                f"batch {message.batch!r} already opened with other options (its records came "
                f"more than SLUICE_BATCH_WAIT={self.wait:g} s before its begin): "
                "produce begin before the records"
            )
        chosen = message.outcome_format
        if chosen is not None and await self._settle(job, chosen) != chosen:
            raise Refused(
                f"batch {message.batch!r} already sends its outcome events as "
                f"{job.outcome_format} (an earlier begin chose it, or its records, read more "
                f"than SLUICE_BATCH_WAIT={self.wait:g} s before this begin)"
            )

    async def end(self, message: IntakeMessage) -> None:
        """A batch's `end`: its job learns how many records it has (unless it was removed)."""
        if await self._was_removed(message):
            await self.finished(self._removed(message))
            return
        ended = events.batch_ended(message.job_id, message.count or 0)
        await (await self.runtime.progress_topic.send(key=message.job_id, value=ended))

    async def settle(self, job: OpenJob, message: IntakeMessage) -> None:
        """Settle the job's outcome form by this record, unless it is settled already."""
        if job.outcome_format is None and not job.removed:
            chosen = choice_of(message)
            if chosen is not None:
                await self._settle(job, chosen)

    async def _settle(self, job: OpenJob, chosen: str) -> str:
        if job.outcome_format is None:
            job.outcome_format = await asyncio.to_thread(
                job_registry.settle_outcome_format, self.runtime.engine, job.job_id, chosen
            )
        return job.outcome_format

    async def job_for(self, message: IntakeMessage, *, at_once: bool = False) -> OpenJob | None:
        """The open job a record belongs to; None while its batch waits for its begin
        (`at_once`: it waits no longer)."""
        job = self.open.get(message.job_id)
        if job is not None:
            job.used = time.monotonic()
            return job
        if message.batch is None:
            return await self._open(message, self._defaults(message))
        now = time.monotonic()
        first = self._first_seen.setdefault(message.job_id, now)
        if now - first < self.wait and not at_once:
            if now - self._looked.get(message.job_id, 0.0) < LOOK_EVERY_SECONDS:
                return None
            self._looked[message.job_id] = now
            engine = self.runtime.engine
            found = await asyncio.to_thread(job_registry.get_job, engine, message.job_id)
            if found is None:
                return None
            return await self._remember(message, found.options, found.outcome_format)
        return await self._open(message, self._defaults(message))

    async def finished(self, job: OpenJob) -> str | None:
        """The status of a batch's job if it has finished (then nothing more is applied to
        it); None while it runs, and always for a standing job."""
        if job.batch is None:
            return None
        if job.job_id not in self._finished:
            now = time.monotonic()
            if now - self._asked.get(job.job_id, 0.0) < ASK_FINISHED_EVERY_SECONDS:
                return None
            self._asked[job.job_id] = now
            status, form = await self._final_status(job)
            if status is None:
                return None
            self._finished[job.job_id] = status
            reused = batch_reused_event(
                job.job_id, job.job_type.name, job.tenant, job.batch, status, now_ms(), form
            )
            log.warning("batch %r of job %s came again after it finished", job.batch, job.job_id)
            topic, key = self.runtime.outcome_topic, job.job_id.encode()
            await (await topic.send(key=key, value=reused, headers=outcome_headers(form)))
        return self._finished[job.job_id]

    async def _final_status(self, job: OpenJob) -> tuple[str | None, str]:
        """The job's final status (`removed` when its registry row went with retention or a
        DELETE) and outcome form; None while it runs."""
        if job.removed:
            return REMOVED, job.outcome_format or JSON
        found = await asyncio.to_thread(job_registry.get_job, self.runtime.engine, job.job_id)
        if found is not None:
            final = found.status if found.status in FINISHED else None
            return final, found.outcome_format or JSON
        if await asyncio.to_thread(was_removed, self.runtime.engine, job.job_id):
            return REMOVED, job.outcome_format or JSON
        return None, JSON

    async def _was_removed(self, message: IntakeMessage) -> bool:
        if message.batch is None:
            return False  # a standing job removed by retention opens anew for late records
        return await asyncio.to_thread(was_removed, self.runtime.engine, message.job_id)

    def _removed(self, message: IntakeMessage) -> OpenJob:
        job_type = JOB_TYPES[message.job_type]
        options = self._defaults(message)  # nothing is applied: any options will do
        job = OpenJob(
            message.job_id, message.tenant, job_type, message.batch, options, removed=True
        )
        self.open[message.job_id] = job
        return job

    def forget_days_over(self, busy: Collection[str]) -> list[str]:
        """Forget the standing jobs of days over that took no record for FORGET_AFTER_SECONDS
        (but not those in `busy`, whose records wait to be sent); their ids."""
        now, today = time.monotonic(), day_of(now_ms())
        gone = [
            job_id
            for job_id, job in self.open.items()
            if job.day is not None
            and job.day < today
            and now - job.used >= FORGET_AFTER_SECONDS
            and job_id not in busy
        ]
        for job_id in gone:
            del self.open[job_id]
        return gone

    def _defaults(self, message: IntakeMessage) -> dict[str, Any]:
        return JOB_TYPES[message.job_type].parse_options({})

    async def _open(self, message: IntakeMessage, options: dict[str, Any]) -> OpenJob:
        """Make the job's registry row unless another worker did, announce it, and keep the
        options the row holds; a batch whose job was removed is not opened again."""
        engine = self.runtime.engine
        if await self._was_removed(message):
            return self._removed(message)
        await asyncio.to_thread(
            job_registry.ensure_job,
            engine,
            message.job_id,
            message.tenant,
            message.job_type,
            options,
            message.batch,
            choice_of(message),
        )
        found = await asyncio.to_thread(job_registry.get_job, engine, message.job_id)
        if found is None:  # removed meanwhile: what this worker knows will do
            return await self._remember(message, options, choice_of(message))
        return await self._remember(message, found.options, found.outcome_format)

    async def _remember(
        self, message: IntakeMessage, options: Mapping[str, Any], outcome_format: str | None
    ) -> OpenJob:
        """Announce the job (every worker that feeds it does, once: a worker that opened it
        may have stopped before it could) and keep it."""
        accepted = events.job_accepted(
            message.job_id,
            message.job_type,
            message.tenant,
            options,
            upstream=True,
            standing_day=message.day,
        )
        delivery = await self.runtime.progress_topic.send(key=message.job_id, value=accepted)
        await delivery
        job = OpenJob(
            message.job_id,
            message.tenant,
            JOB_TYPES[message.job_type],
            message.batch,
            dict(options),
            message.day,
            outcome_format=outcome_format,
        )
        self.open[message.job_id] = job
        self._first_seen.pop(message.job_id, None)
        self._looked.pop(message.job_id, None)
        return job
