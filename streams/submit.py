"""Submitting a batch: announce the job, split records into chunks on Kafka, seal the totals.

The caller feeds parsed records as they stream in; at most `MAX_CHUNKS_IN_FLIGHT` chunks wait
for the broker's acknowledgement at a time, so memory stays bounded however large the upload.
A job is answered `202` only after every chunk is acknowledged (acks=all).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from streams import logs
from streams.clock import now_ms
from streams.estimates import RATES, estimate_seconds
from streams.exceptions import (
    BrokerUnavailable,
    DatabaseUnavailable,
    LimitExceeded,
    RequestError,
)
from streams.exports.signing import signing_key
from streams.jobtypes.base import JobType
from streams.metrics import metrics
from streams.models import ParsedRecord
from streams.runtime import Runtime
from streams.sink import jobs as job_registry
from streams.sink.faults import database_away
from streams.split import ChunkCutter
from streams.wire import events
from streams.wire.chunks import chunk_header, encode_chunk
from streams.wire.origin import ORIGIN_HEADER, origin_mark

log = logging.getLogger(__name__)

MAX_CHUNKS_IN_FLIGHT = 32
MAX_UNKNOWN_COLUMNS = 50
GENERATED_BATCH = 5000  # records a generating job type hands over at a time
# The share of SLUICE_SUBMIT_TIMEOUT a registry write waits for a lock: a locked database is a
# 503 well within the time a submission waits for Kafka.
REGISTRY_WAIT = 0.5

T = TypeVar("T")


@dataclass(frozen=True)
class Accepted:
    job_id: str
    total_records: int
    total_chunks: int
    estimated_seconds: int  # still to go, from the rate of recent jobs (streams/estimates.py)


def check_columns(job_type: JobType, columns: Iterable[str]) -> None:
    """A 400 before any job exists when required columns are missing."""
    missing = sorted(job_type.required_columns - set(columns))
    if missing:
        raise RequestError(
            f"missing required column(s): {', '.join(missing)} "
            f"({job_type.name} needs {', '.join(sorted(job_type.required_columns))})",
            field=missing[0],
        )


class JobSubmission:
    """One job being submitted: `open`, `add` records as they arrive, then `close` or `abort`."""

    def __init__(
        self,
        runtime: Runtime,
        job_type: JobType,
        options: Mapping[str, Any],
        tenant: str,
    ):
        self.runtime = runtime
        self.job_type = job_type
        self.options = dict(options)
        self.tenant = tenant
        self.job_id = str(uuid.uuid4())
        self.unknown_columns: set[str] = set()
        self._in_flight: deque[Awaitable[Any]] = deque()
        partitions = runtime.state.chunk_partitions or runtime.settings.partitions
        self._cutter = ChunkCutter(
            job_id=self.job_id,
            job_type=job_type,
            tenant=tenant,
            options=self.options,
            partitions=partitions,
        )
        self._timeout = runtime.settings.submit_timeout
        self._open = False
        self._announced = False  # on Kafka: from then on a failure must end the job `failed`
        self._began = time.monotonic()  # when the job was announced: its upload began
        # the API vouches for its caller's tenant on every chunk (streams/wire/origin.py)
        self._origin = (
            ORIGIN_HEADER,
            origin_mark(signing_key(runtime.settings), tenant, self.job_id),
        )

    async def _broker(self, operation: Awaitable[T]) -> T:
        try:
            return await asyncio.wait_for(operation, self._timeout)
        except Exception as exc:  # timeouts, connection and Kafka errors alike
            raise BrokerUnavailable(
                f"Kafka did not acknowledge within {self._timeout:g} s ({type(exc).__name__})"
            ) from exc

    async def _publish(self, value: bytes) -> None:
        """A progress event, sent and acknowledged within one timeout."""

        async def send_and_wait() -> None:
            delivery = await self.runtime.progress_topic.send(key=self.job_id, value=value)
            await delivery

        await self._broker(send_and_wait())

    async def _registry(self, write: Callable[..., None], *args: Any) -> None:
        """Write this job's row of the job registry, off the event loop, waiting at most
        REGISTRY_WAIT of the submit timeout for a lock (a SQLite file another program holds)."""
        wait = self._timeout * REGISTRY_WAIT
        await asyncio.to_thread(
            functools.partial(write, wait=wait), self.runtime.engine, self.job_id, *args
        )

    async def open(self) -> None:
        """Register the job, then announce it on Kafka. DatabaseUnavailable (a database locked
        or away) or BrokerUnavailable (Kafka did not acknowledge) means nothing of it exists:
        no row, no announcement, so no worker ever sees a job the client was refused."""
        try:
            await self._registry(
                job_registry.insert_job, self.tenant, self.job_type.name, self.options
            )
        except Exception as exc:
            if not database_away(exc):
                raise
            raise DatabaseUnavailable(
                f"the job registry cannot be written: the database is locked or away "
                f"({type(exc).__name__})"
            ) from exc
        try:
            await self._publish(
                events.job_accepted(
                    self.job_id,
                    self.job_type.name,
                    self.tenant,
                    self.options,
                    awaits_result=self.job_type.has_result,
                )
            )
        except BrokerUnavailable:
            await self._forget()
            raise
        self._began = time.monotonic()
        self.runtime.state.uploads_in_flight += 1
        self._open = self._announced = True

    async def _forget(self) -> None:
        try:
            await self._registry(job_registry.forget_job)
        except Exception as exc:  # the database failed too: the row says queued, nothing runs
            log.warning("job %s was not announced; its registry row stays (%s)", self.job_id, exc)

    def describe_records(self, *, columns: Iterable[str] = (), json_values: bool) -> None:
        """CSV: every record has these columns, as text; JSON: values keep their types."""
        self._cutter.columns = tuple(columns)
        self._cutter.json_values = json_values

    def note_columns(self, columns: Iterable[str]) -> None:
        room = MAX_UNKNOWN_COLUMNS - len(self.unknown_columns)
        if room > 0:
            unknown = set(columns) - self.job_type.known_columns - self.unknown_columns
            self.unknown_columns.update(sorted(unknown)[:room])

    async def add(self, records: Iterable[ParsedRecord]) -> None:
        limit = self.runtime.settings.max_records
        for record in records:
            if self._cutter.records >= limit:
                raise LimitExceeded(f"the job has more than {limit:,} records (SLUICE_MAX_RECORDS)")
            chunk = self._cutter.add(record)
            if chunk is not None:
                await self._send(chunk)
        self.runtime.state.touch()

    async def _send(self, chunk: Any) -> None:
        value = encode_chunk(chunk, submitted_at_ms=now_ms())
        key = f"{chunk.job_id}:{chunk.chunk_index}".encode()
        delivery = await self._broker(
            self.runtime.chunk_topic.send(
                key=key,
                value=value,
                partition=chunk.partition,
                headers=[*chunk_header(chunk), self._origin],
            )
        )
        self._in_flight.append(delivery)
        while len(self._in_flight) > MAX_CHUNKS_IN_FLIGHT:
            await self._broker(self._in_flight.popleft())

    async def close(self) -> Accepted:
        """Flush the last chunks, wait for every ack, and publish the totals."""
        try:
            for chunk in self._cutter.flush():
                await self._send(chunk)
            while self._in_flight:
                await self._broker(self._in_flight.popleft())
            total_records, total_chunks = self._cutter.records, self._cutter.chunks
            await self._publish(
                events.split_completed(
                    self.job_id, total_records, total_chunks, self.unknown_columns
                )
            )
            await self._record_totals(total_records, total_chunks)
        finally:
            self._done()
        metrics().submitted_records.inc(total_records)
        logs.job_accepted(self.job_id, self.job_type.name, self.tenant, total_records, total_chunks)
        rate = await RATES.rate(self.runtime.engine, self.job_type.name)
        elapsed = time.monotonic() - self._began
        estimate = estimate_seconds(total_records, rate, elapsed)
        return Accepted(self.job_id, total_records, total_chunks, estimate)

    async def _record_totals(self, total_records: int, total_chunks: int) -> None:
        """For listings; the job is accepted already (every chunk and its totals are on
        Kafka), so a database away here is no reason to fail it: the progress agent records
        the totals with the job's status later."""
        try:
            await self._registry(job_registry.record_split, total_records, total_chunks)
        except Exception as exc:
            if not database_away(exc):
                raise
            log.warning(
                "job %s: totals not recorded yet, the database is away (%s)", self.job_id, exc
            )

    async def abort(self, reason: str) -> None:
        """The upload broke off after the job was announced: the job ends `failed` (before:
        `open` left nothing behind)."""
        self._done()
        if not self._announced:
            return
        self._in_flight.clear()
        try:
            await self._registry(job_registry.record_error, reason)
        except Exception as exc:  # the progress event below still ends the job
            log.warning("job %s: its failure is not in the registry (%s)", self.job_id, exc)
        try:
            await self._publish(events.split_failed(self.job_id, reason))
        except Exception:  # the registry row says why; the broker may be the cause
            log.exception("could not announce the failure of job %s", self.job_id)

    def _done(self) -> None:
        if self._open:
            self._open = False
            self.runtime.state.uploads_in_flight -= 1


async def submit_generated(
    runtime: Runtime, job_type: JobType, options: Mapping[str, Any], tenant: str
) -> Accepted:
    """A job whose type makes its own records (`JobType.source`, e.g. the ids an export reads):
    no upload, the same path as one. The source is read in a thread, a batch at a time."""
    submission = JobSubmission(runtime, job_type, options, tenant)
    await submission.open()
    submission.describe_records(columns=job_type.columns, json_values=False)
    records = job_type.source(runtime.engine, tenant, submission.options)
    try:
        row = 0
        while batch := await asyncio.to_thread(_next_records, records, row, GENERATED_BATCH):
            row += len(batch)
            await submission.add(batch)
        return await submission.close()
    except BaseException as exc:
        await submission.abort(f"reading the job's records failed: {type(exc).__name__}")
        raise
    finally:
        close = getattr(records, "close", None)  # a generator: releases its connection
        if close is not None:
            await asyncio.to_thread(close)


def _next_records(
    records: Iterator[Mapping[str, Any]], first_row: int, size: int
) -> list[ParsedRecord]:
    return [
        ParsedRecord(first_row + offset, dict(fields))
        for offset, fields in enumerate(itertools.islice(records, size), start=1)
    ]
