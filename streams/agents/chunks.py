"""The chunk agent: apply each chunk in one transaction, report its outcome, never lose one.

Events are taken in small batches; chunks of one partition are applied in order, chunks of
different partitions in parallel in the writer processes (streams/writers.py). Faust acks a
batch once this agent returns to it, even when it returns by cancellation, so a batch is
shielded: a stopping worker finishes the chunks it has started before its last commit.
Nothing here raises into Faust: a chunk either reaches the sink or the dead-letter topic.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from streams import events
from streams.app import Sluice
from streams.deadletter import dead_letter
from streams.failures import backoff_delay
from streams.jobtypes.base import ChunkResult, RecordFailure
from streams.kafka.end_offsets import first_offset_from, probe_options_of
from streams.metrics import metrics
from streams.options import COMMON_OPTIONS
from streams.writers import ApplyFailed, BrokenProcessPool, ChunkInfo, apply_raw

log = logging.getLogger(__name__)
DEFAULT_RETRY_ATTEMPTS = COMMON_OPTIONS["retryAttempts"].default


class ChunkProcessor:
    def __init__(self, sluice: Sluice):
        self.sluice = sluice
        self.app = sluice.app

    async def process_batch(self, batch: Sequence[Any]) -> None:
        by_partition: dict[int, list[Any]] = defaultdict(list)
        for event in batch:
            by_partition[event.message.partition].append(event)
        work = asyncio.ensure_future(
            asyncio.gather(*(self._process_in_order(evs) for evs in by_partition.values()))
        )
        try:
            await asyncio.shield(work)
        except asyncio.CancelledError:
            # finish what was started: the ack that follows must not skip a chunk
            await work
            raise

    async def _process_in_order(self, partition_events: list[Any]) -> None:
        for event in partition_events:
            message = event.message
            committed = self.app.consumer._committed_offset.get(message.tp)  # type: ignore[attr-defined]
            hole = self.sluice.commit_guard.admit(message.tp, message.offset, committed)
            if hole == -1:
                continue  # applied before this partition was read again
            if hole is not None:
                await self._reread(message.tp, hole, message.offset)
                continue
            await self._process(message)

    async def _reread(self, tp: Any, hole: int, arrived: int) -> None:
        """An earlier offset was never applied (Faust skipped it): read again from there, so
        records sharing a key keep their order. A hole the log really has is stepped over."""
        guard = self.sluice.commit_guard
        if not guard.start_rewind(tp, hole):
            return
        first = await first_offset_from(probe_options_of(self.app.consumer), tp, hole)
        if first is not None and first > hole:
            log.info(
                "%s[%d]: no records in %d..%d; continuing at %d",
                tp.topic,
                tp.partition,
                hole,
                first - 1,
                first,
            )
            guard.skip_gap(tp, first)
            hole = first
        log.warning(
            "%s[%d]: offset %d arrived before offset %d was applied; reading again from %d",
            tp.topic,
            tp.partition,
            arrived,
            hole,
            hole,
        )
        await self.app.consumer.seek(tp, hole)

    async def _process(self, message: Any) -> None:
        state, guard = self.sluice.state, self.sluice.commit_guard
        state.chunks_in_flight += 1
        state.touch()
        guard.begin(message.tp, message.offset)
        try:
            await self._apply_or_dead_letter(message)
            guard.done(message.tp, message.offset)
        finally:
            state.chunks_in_flight -= 1
            state.touch()

    async def _apply_or_dead_letter(self, message: Any) -> None:
        loop = asyncio.get_running_loop()
        info: ChunkInfo | None = None
        attempts = 0
        first_failure_ms = 0
        while True:
            attempts += 1
            started = time.perf_counter()
            try:
                applied = await loop.run_in_executor(self.sluice.executor, apply_raw, message.value)
            except (ApplyFailed, BrokenProcessPool) as exc:
                if isinstance(exc, BrokenProcessPool):  # a writer process died: start anew
                    self.sluice.restart_writers()
                    failure = ApplyFailed(info, type(exc).__name__, str(exc), retry=True)
                else:
                    failure = exc
                info = failure.info or info
                first_failure_ms = first_failure_ms or events.now_ms()
                if failure.retry and attempts <= self._retry_attempts(info):
                    metrics().chunks.labels("retried").inc()
                    delay = backoff_delay(attempts)
                    log.warning(
                        "chunk %s attempt %d failed (%s); retrying in %.2fs",
                        _where(message, info),
                        attempts,
                        failure,
                        delay,
                    )
                    await asyncio.sleep(delay)
                    continue
                await self._dead_letter(message, info, failure, attempts, first_failure_ms)
                return
            metrics().chunk_seconds.observe(time.perf_counter() - started)
            metrics().chunks.labels("applied" if applied.fresh else "redelivered").inc()
            result = applied.result
            if applied.fresh:
                for outcome in ("successful", "failed", "skipped"):
                    metrics().records.labels(applied.info.job_type, outcome).inc(
                        getattr(result, outcome)
                    )
            await self._send_outcome(applied.info, result)
            return

    @staticmethod
    def _retry_attempts(info: ChunkInfo | None) -> int:
        if info is None:
            return DEFAULT_RETRY_ATTEMPTS
        value = info.options.get("retryAttempts", DEFAULT_RETRY_ATTEMPTS)
        return value if isinstance(value, int) else DEFAULT_RETRY_ATTEMPTS

    async def _send_outcome(
        self, info: ChunkInfo, result: ChunkResult, *, dead_lettered: bool = False
    ) -> None:
        value = events.chunk_outcome(info, result, dead_lettered=dead_lettered)
        # wait for the broker's ack: the chunk's offset may be committed right after we return
        delivery = await self.sluice.progress_topic.send(key=info.job_id, value=value)
        await delivery

    async def _dead_letter(
        self,
        message: Any,
        info: ChunkInfo | None,
        error: ApplyFailed,
        attempts: int,
        first_failure_ms: int,
    ) -> None:
        metrics().chunks.labels("dead_lettered").inc()
        log.error(
            "chunk %s dead-lettered after %d attempt(s): %s",
            _where(message, info),
            attempts,
            error,
        )
        await dead_letter(
            self.app.producer,
            message,
            error,
            attempts=attempts,
            first_failure_ms=first_failure_ms,
            job_id=info.job_id if info else None,
            chunk_index=info.chunk_index if info else None,
        )
        if info is not None:
            # the job's records are neither lost nor successful: they count as failed
            result = ChunkResult(records=len(info.rows))
            reason = f"chunk dead-lettered: {error.error_class}"
            for row in info.rows:
                result.fail(RecordFailure(row, None, reason))
            await self._send_outcome(info, result, dead_lettered=True)


def _where(message: Any, info: ChunkInfo | None) -> str:
    place = f"{message.topic}[{message.partition}]@{message.offset}"
    return f"{place} (job {info.job_id} chunk {info.chunk_index})" if info else place


def register(sluice: Sluice) -> None:
    processor = ChunkProcessor(sluice)
    batch_size = sluice.settings.batch_chunks

    @sluice.app.agent(sluice.chunk_topic, name="apply-chunks")
    async def apply_chunks(stream: Any) -> None:
        async for batch in stream.take_events(batch_size, within=0.05):
            await processor.process_batch(batch)
