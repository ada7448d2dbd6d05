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
from collections.abc import Iterable, Sequence
from typing import Any

from streams import events
from streams.agents.parking import Lane, Parked
from streams.app import Sluice
from streams.deadletter import dead_letter
from streams.failures import backoff_delay
from streams.jobtypes.base import ChunkResult, RecordFailure
from streams.kafka.end_offsets import first_offset_from, probe_options_of
from streams.metrics import metrics
from streams.options import COMMON_OPTIONS
from streams.sink.results import record_dead_lettered
from streams.writers import ApplyFailed, Blocked, BrokenProcessPool, ChunkInfo, apply_raw

log = logging.getLogger(__name__)
DEFAULT_RETRY_ATTEMPTS = COMMON_OPTIONS["retryAttempts"].default


class ChunkProcessor:
    def __init__(self, sluice: Sluice):
        self.sluice = sluice
        self.app = sluice.app
        self.lanes: dict[Any, Lane] = {}  # partitions with parked chunks

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
        entry = Parked(message)
        lane = self.lanes.get(message.tp)
        blocked = lane.blocked_keys() if lane and lane.parked else frozenset()
        if blocked is None:
            entry.keys = None  # parked untried behind a chunk of unknown keys: so are its own
        try:
            finished = blocked is not None and await self._attempt(entry, blocked)
        except BaseException:
            state.chunks_in_flight -= 1
            raise
        if not finished:
            self._park(entry)

    def _finish(self, entry: Parked) -> None:
        message, state = entry.message, self.sluice.state
        self.sluice.commit_guard.done(message.tp, message.offset)
        state.chunks_in_flight -= 1
        state.touch()

    def _park(self, entry: Parked) -> None:
        tp = entry.message.tp
        lane = self.lanes.setdefault(tp, Lane())
        lane.parked.append(entry)
        if lane.task is None or lane.task.done():
            lane.task = asyncio.ensure_future(self._retry_parked(tp, lane))

    async def _retry_parked(self, tp: Any, lane: Lane) -> None:
        """Retry passes over a partition's parked chunks until none is left (see parking.py)."""
        while lane.parked:
            await asyncio.sleep(lane.seconds_to_next())
            now = time.monotonic()
            ahead: set[str] | None = set()  # keys of chunks staying parked, ahead of the next
            for entry in list(lane.parked):
                tried = ahead is not None and entry.is_due(now)
                if tried and await self._attempt_parked(entry, frozenset(ahead or ())):
                    lane.parked.remove(entry)
                    continue
                ahead = None if ahead is None or entry.keys is None else ahead | entry.keys
        if self.lanes.get(tp) is lane:
            del self.lanes[tp]

    async def _attempt_parked(self, entry: Parked, blocked: frozenset[str]) -> bool:
        try:
            return await self._attempt(entry, blocked)
        except Exception:  # e.g. Kafka did not acknowledge the outcome: try again later
            log.exception("chunk %s: retry failed", _where(entry.message, entry.info))
            entry.due = time.monotonic() + backoff_delay(max(entry.attempts, 1))
            return False

    def forget(self, tps: Iterable[Any]) -> None:
        """Partitions revoked: their parked chunks are the next owner's (nothing was committed
        past them)."""
        for tp in tps:
            lane = self.lanes.pop(tp, None)
            if lane is None:
                continue
            if lane.task is not None:
                lane.task.cancel()
            self.sluice.state.chunks_in_flight -= len(lane.parked)
            lane.parked.clear()

    def stop(self) -> None:
        self.forget(list(self.lanes))

    async def _attempt(self, entry: Parked, blocked: frozenset[str]) -> bool:
        """Try a chunk once. True: finished (applied, or dead-lettered). False: it waits, for
        its next attempt (`entry.due`) or behind a parked chunk sharing its keys."""
        loop = asyncio.get_running_loop()
        message = entry.message
        started = time.perf_counter()
        try:
            outcome = await loop.run_in_executor(
                self.sluice.executor, apply_raw, message.value, None, blocked or None
            )
        except (ApplyFailed, BrokenProcessPool) as exc:
            if isinstance(exc, BrokenProcessPool):  # a writer process died: start anew
                self.sluice.restart_writers()
                failure = ApplyFailed(entry.info, type(exc).__name__, str(exc), retry=True)
            else:
                failure = exc
            entry.info = failure.info or entry.info
            entry.keys = failure.keys if failure.info is not None else None
            entry.attempts += 1
            entry.first_failure_ms = entry.first_failure_ms or events.now_ms()
            if failure.retry and entry.attempts <= self._retry_attempts(entry.info):
                metrics().chunks.labels("retried").inc()
                delay = backoff_delay(entry.attempts)
                entry.due = time.monotonic() + delay
                log.warning(
                    "chunk %s attempt %d failed (%s); retrying in %.2fs",
                    _where(message, entry.info),
                    entry.attempts,
                    failure,
                    delay,
                )
                return False
            await self._dead_letter(
                message, entry.info, failure, entry.attempts, entry.first_failure_ms
            )
            self._finish(entry)
            return True
        if isinstance(outcome, Blocked):
            entry.info, entry.keys, entry.due = outcome.info, outcome.keys, None
            return False
        metrics().chunk_seconds.observe(time.perf_counter() - started)
        metrics().chunks.labels("applied" if outcome.fresh else "redelivered").inc()
        result = outcome.result
        if outcome.fresh:
            for name in ("successful", "failed", "skipped"):
                metrics().records.labels(outcome.info.job_type, name).inc(getattr(result, name))
        await self._send_outcome(outcome.info, result)
        self._finish(entry)
        return True

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
            await self._keep_dead_lettered_results(info, reason)
            await self._send_outcome(info, result, dead_lettered=True)

    async def _keep_dead_lettered_results(self, info: ChunkInfo, reason: str) -> None:
        """The records' outcomes say where they are; a replay that applies them replaces these."""
        loop = asyncio.get_running_loop()
        engine = self.sluice.engine
        for attempt in range(1, 4):
            try:
                await loop.run_in_executor(
                    None, record_dead_lettered, engine, info.job_id, info.rows, reason
                )
                return
            except Exception as exc:  # the database is what failed the chunk, perhaps
                log.warning("results of dead-lettered %s not written: %s", info, exc)
                await asyncio.sleep(backoff_delay(attempt))
        log.error("results of dead-lettered chunk %s lost (job %s)", info.chunk_index, info.job_id)


def _where(message: Any, info: ChunkInfo | None) -> str:
    place = f"{message.topic}[{message.partition}]@{message.offset}"
    return f"{place} (job {info.job_id} chunk {info.chunk_index})" if info else place


def register(sluice: Sluice) -> None:
    processor = ChunkProcessor(sluice)
    batch_size = sluice.settings.batch_chunks

    @sluice.app.agent(sluice.chunk_topic, name="apply-chunks")
    async def apply_chunks(stream: Any) -> None:
        try:
            async for batch in stream.take_events(batch_size, within=0.05):
                await processor.process_batch(batch)
        finally:
            processor.stop()  # parked chunks were not committed: they are read again

    async def forget_revoked(sender: Any, revoked: set[Any], **kwargs: Any) -> None:
        processor.forget(revoked)

    sluice.app.on_partitions_revoked.connect(forget_revoked)  # type: ignore[arg-type]
