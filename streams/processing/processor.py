"""The chunk processor: apply each chunk once, report its outcome, never lose one.

Chunks of one partition are admitted in offset order (streams/kafka/admission.py) and applied
in order; chunks of different partitions are applied in parallel in the writer processes
(streams/processing/pool.py). A chunk that fails is decided on by the failure policy: retried
later while parked (streams/processing/parking.py), or dead-lettered. A chunk reaches the sink
or the dead-letter topic; nothing here raises into Faust.

Faust acks a batch once the agent returns to it, even when it returns by cancellation, so a
batch is shielded: a stopping worker finishes the chunks it has started before its last commit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from streams.clock import now_ms
from streams.kafka.admission import InOrderAdmission
from streams.kafka.commit_guard import CommitGuard
from streams.metrics import metrics
from streams.models import ChunkInfo, ChunkResult
from streams.processing.parking import Parked, Parking
from streams.processing.policy import Failure, Retry, decide, retry_budget
from streams.processing.writer import Applied, ApplyFailed, Blocked
from streams.retry import backoff_delay
from streams.worker_state import WorkerState

log = logging.getLogger(__name__)


class Writers(Protocol):
    """Applies a chunk's bytes unless it shares a key with `blocked` (WriterPool)."""

    async def apply(
        self, value: bytes, blocked: frozenset[str], headers: Any = None
    ) -> Applied | Blocked: ...


class Sender(Protocol):
    """Publishes what became of a chunk (Outbox)."""

    async def outcome(
        self, info: ChunkInfo, result: ChunkResult, *, dead_lettered: bool = False
    ) -> None: ...

    async def dead_letter(self, entry: Parked, failure: Failure) -> None: ...

    async def waiting(self, info: ChunkInfo, failure: Failure) -> None: ...


class ChunkProcessor:
    def __init__(
        self,
        writers: Writers,
        outbox: Sender,
        admission: InOrderAdmission,
        state: WorkerState,
    ):
        self.writers = writers
        self.outbox = outbox
        self.admission = admission
        self.guard: CommitGuard = admission.guard
        self.state = state
        self.parking = Parking(self._attempt_parked)
        #: every chunk admitted and not finished, applying or parked, by (partition, offset)
        self.in_flight: dict[tuple[Any, int], Parked] = {}
        #: open while the database answers. A chunk that finds it away closes it; until a
        #: waiting one gets through, new chunks are not admitted (nor committed: they are read
        #: again once it answers). The outage is backpressure, with Kafka keeping the rest;
        #: not a pile of parked chunks in memory, nor a full stream buffer that would stop
        #: Faust delivering the progress topic too.
        self.database_answers = asyncio.Event()
        self.database_answers.set()

    async def process_batch(self, messages: Sequence[Any]) -> None:
        by_partition: dict[int, list[Any]] = defaultdict(list)
        for message in messages:
            by_partition[message.partition].append(message)
        work = asyncio.ensure_future(
            asyncio.gather(*(self._in_order(ms) for ms in by_partition.values()))
        )
        try:
            await asyncio.shield(work)
        except asyncio.CancelledError:
            # finish what was started: the ack that follows must not skip a chunk
            await work
            raise

    async def _in_order(self, messages: list[Any]) -> None:
        for message in messages:
            if not self.database_answers.is_set():
                return  # not admitted: read again from here once the database answers
            if await self.admission.admit(message):
                await self._process(message)

    async def _process(self, message: Any) -> None:
        self.state.chunks_in_flight += 1
        self.state.touch()
        self.guard.begin(message.tp, message.offset)
        entry = Parked(message)
        self.in_flight[message.tp, message.offset] = entry
        blocked = self.parking.blocked_keys(message.tp)
        if blocked is None:
            entry.keys = None  # parked untried behind a chunk of unknown keys: so are its own
        try:
            finished = blocked is not None and await self._attempt(entry, blocked)
        except BaseException:
            self.state.chunks_in_flight -= 1
            self.in_flight.pop((message.tp, message.offset), None)
            raise
        if not finished:
            self.parking.park(message.tp, entry)

    def forget(self, tps: Iterable[Any]) -> None:
        """Partitions revoked: their parked chunks are the next owner's (nothing was committed
        past them)."""
        dropped = self.parking.forget(tps)
        self.state.chunks_in_flight -= len(dropped)
        for entry in dropped:
            self.in_flight.pop((entry.message.tp, entry.message.offset), None)
        self._open_unless_waiting()

    def stop(self) -> None:
        self.forget(list(self.parking.lanes))

    def _finish(self, entry: Parked) -> None:
        self.in_flight.pop((entry.message.tp, entry.message.offset), None)
        self.guard.done(entry.message.tp, entry.message.offset)
        self.state.chunks_in_flight -= 1
        self.state.touch()
        self._open_unless_waiting()

    def _open_unless_waiting(self) -> None:
        """No chunk left waiting for the database: nothing would open the way again."""
        if not any(entry.waits for entry in self.in_flight.values()):
            self.database_answers.set()

    async def _attempt_parked(self, entry: Parked, blocked: frozenset[str]) -> bool:
        try:
            return await self._attempt(entry, blocked)
        except Exception:  # e.g. Kafka did not acknowledge the outcome: try again later
            log.exception("chunk %s: retry failed", _where(entry.message, entry.info))
            entry.due = time.monotonic() + backoff_delay(max(entry.attempts, 1))
            return False

    async def _attempt(self, entry: Parked, blocked: frozenset[str]) -> bool:
        """Try a chunk once. True: finished (applied, or dead-lettered). False: it waits, for
        its next attempt (`entry.due`) or behind a parked chunk sharing its keys."""
        started = time.perf_counter()
        try:
            outcome = await self.writers.apply(entry.message.value, blocked, entry.message.headers)
        except ApplyFailed as exc:
            return await self._failed(entry, exc)
        if isinstance(outcome, Blocked):
            entry.info, entry.keys, entry.due = outcome.info, outcome.keys, None
            return False
        self.database_answers.set()
        metrics().chunk_seconds.observe(time.perf_counter() - started)
        metrics().chunks.labels("applied" if outcome.fresh else "redelivered").inc()
        if not outcome.fresh:  # normal after a crash or a rebalance: said once per chunk
            log.info(
                "chunk %s was applied before: a redelivery, answered with the ledger's outcome",
                _where(entry.message, outcome.info),
            )
        else:
            for name in ("successful", "failed", "skipped"):
                value = getattr(outcome.result, name)
                metrics().records.labels(outcome.info.job_type, name).inc(value)
        await self.outbox.outcome(outcome.info, outcome.result)
        self._finish(entry)
        return True

    async def _failed(self, entry: Parked, error: ApplyFailed) -> bool:
        entry.info = error.info or entry.info
        entry.keys = error.keys if error.info is not None else None
        entry.first_failure_ms = entry.first_failure_ms or now_ms()
        where = _where(entry.message, entry.info)
        if error.failure.waits:
            entry.waits += 1
            self.database_answers.clear()
            decision = decide(error.failure, entry.waits, 0)
        else:
            entry.attempts += 1
            budget = retry_budget(entry.info.options if entry.info else None)
            decision = decide(error.failure, entry.attempts, budget)
        if isinstance(decision, Retry):
            entry.due = time.monotonic() + decision.delay
            if decision.waiting:
                await self._wait_for_database(entry, error.failure, decision.delay)
                return False
            metrics().chunks.labels("retried").inc()
            failed = f"chunk {where} attempt {entry.attempts} failed ({error.failure})"
            log.warning("%s; retrying in %.2fs", failed, decision.delay)
            return False
        metrics().chunks.labels("dead_lettered").inc()
        tried = f"after {entry.attempts} attempt(s): {error.failure}"
        log.error("chunk %s dead-lettered %s (%s)", where, tried, decision.reason)
        await self.outbox.dead_letter(entry, error.failure)
        self._finish(entry)
        return True

    async def _wait_for_database(self, entry: Parked, failure: Failure, delay: float) -> None:
        """The chunk waits for the database: said once on the progress topic (its job reads
        `waitingOn: database`), logged on the first wait and every tenth."""
        metrics().chunks.labels("waited").inc()
        if entry.waits == 1 or entry.waits % 10 == 0:
            log.warning(
                "chunk %s waits for the database (%d so far: %s); next try in %.2fs",
                _where(entry.message, entry.info),
                entry.waits,
                failure,
                delay,
            )
        if entry.waits == 1 and entry.info is not None:
            try:
                await self.outbox.waiting(entry.info, failure)
            except Exception as exc:  # a hint: the chunk goes on waiting regardless
                log.warning("could not say that chunk %s waits: %s", entry.info.chunk_index, exc)


def _where(message: Any, info: ChunkInfo | None) -> str:
    place = f"{message.topic}[{message.partition}]@{message.offset}"
    return f"{place} (job {info.job_id} chunk {info.chunk_index})" if info else place
