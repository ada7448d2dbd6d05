"""Records read from the input topics, re-split into chunks on the chunk topic.

Each record goes to the chunk partition its identity hashes to (`partition_for`, as the API's
splitter does), so a key's records from the API and from the topics are applied in the order
they entered the chunk topic. Records gather per (job, chunk partition) and leave as a chunk when
`chunkSize` are there or LINGER_SECONDS after the first. An input message's offset is done (may
be committed) only once the chunk holding it is acknowledged; a worker that stops before reads
it again, and the writer drops records that already have a result (streams/processing/
transaction.py), so nothing is counted twice.

Chunk indexes come from blocks of BLOCK reserved in the job's registry row, used in order by one
intake process; progress counts an intake chunk once by its lane (index // BLOCK) and its
position in the lane (streams/progress.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from streams.clock import now_ms
from streams.exports.signing import signing_key
from streams.intake.batches import Batches, OpenJob
from streams.intake.messages import IntakeMessage
from streams.kafka.commit_guard import CommitGuard
from streams.models import Chunk
from streams.runtime import Runtime
from streams.sink.chunk_indexes import allocate_chunks
from streams.split import partition_for
from streams.wire.chunks import chunk_header, encode_chunk, raw_record
from streams.wire.origin import ORIGIN_HEADER, origin_mark

BLOCK = 64
MAX_UNACKNOWLEDGED = 32  # chunks sent and not acknowledged yet: past it, the oldest is waited for
LINGER_SECONDS = 1.0  # full chunks cost the writers less per record than quick ones
FORGET_EVERY_SECONDS = 10.0  # how often standing jobs of days over are looked at
MAX_HELD = 200_000  # records held for their batches' begin, in all: past it the oldest opens

log = logging.getLogger(__name__)
Where = tuple[Any, int]  # (topic partition, offset) of an input message


@dataclass
class Gathering:
    """Records of one job for one chunk partition, not sent yet."""

    since: float = field(default_factory=time.monotonic)
    records: list[dict[str, Any]] = field(default_factory=list)
    rows: set[int] = field(default_factory=set)
    read_from: list[Where] = field(default_factory=list)


class IntakeSplitter:
    def __init__(self, runtime: Runtime, batches: Batches, guard: CommitGuard):
        self.runtime = runtime
        self.batches = batches
        self.guard = guard  # the input topics' offsets: done once their chunk is acknowledged
        self._gathering: dict[tuple[str, int], Gathering] = {}
        self._held: dict[str, list[tuple[IntakeMessage, Where]]] = {}  # batches awaiting begin
        self._blocks: dict[str, tuple[int, int]] = {}  # job → (next index, end of its block)
        self._key = signing_key(runtime.settings)
        # the agents and the linger timer take turns: a chunk is sent whole before the next
        # one of the same key is cut, so a key's chunks reach the chunk topic in order
        self._turn = asyncio.Lock()
        self._unacknowledged: deque[tuple[Any, list[Where]]] = deque()
        self._forgot = time.monotonic()

    async def add(self, message: IntakeMessage, where: Where) -> None:
        async with self._turn:
            await self._add(message, where)

    async def _add(self, message: IntakeMessage, where: Where) -> None:
        held = self._held.get(message.job_id)
        if held is not None:  # behind records held before it: keep their order
            held.append((message, where))
            await self._release(message.job_id)
            return
        job = await self.batches.job_for(message)
        if job is None:
            self._held[message.job_id] = [(message, where)]
            return
        await self._gather(job, message, where)

    async def _release(self, job_id: str) -> None:
        """Gather a batch's held records, in the order they were read, once it is open (the
        oldest batch held opens at once when too many records are held: memory is bounded)."""
        first, _ = self._held[job_id][0]
        too_many = sum(len(held) for held in self._held.values()) > MAX_HELD
        oldest = next(iter(self._held)) == job_id
        job = await self.batches.job_for(first, at_once=too_many and oldest)
        if job is not None:
            for message, where in self._held.pop(job_id):
                await self._gather(job, message, where)

    async def flush_due(self, everything: bool = False) -> None:
        """Send what has lingered long enough; feed held records whose batch opened."""
        async with self._turn:
            await self._flush_due(everything)

    async def flush_all(self) -> None:
        """Send everything gathered and wait for Kafka's acknowledgements (before a rebalance
        or a stop: the done offsets are committed next)."""
        async with self._turn:
            await self._flush_due(everything=True)
            await self._settle(wait_for=len(self._unacknowledged))

    async def _flush_due(self, everything: bool) -> None:
        for job_id in list(self._held):
            await self._release(job_id)
        now = time.monotonic()
        for key, gathering in list(self._gathering.items()):
            if everything or now - gathering.since >= LINGER_SECONDS:
                await self._send(key)
        await self._settle()
        if now - self._forgot >= FORGET_EVERY_SECONDS:
            self._forgot = now
            # a block of a forgotten job is not used again: its job may be made anew
            for job_id in self.batches.forget_days_over({job for job, _ in self._gathering}):
                self._blocks.pop(job_id, None)

    async def _gather(self, job: OpenJob, message: IntakeMessage, where: Where) -> None:
        await self.batches.settle(job, message)  # before any chunk of it is sent
        key = job.job_type.routing_key(message.fields) if message.fields is not None else None
        partitions = self.runtime.state.chunk_partitions or self.runtime.settings.partitions
        partition = partition_for(key if key is not None else str(message.row), partitions)
        gathering = self._gathering.setdefault((job.job_id, partition), Gathering())
        gathering.read_from.append(where)
        if message.row in gathering.rows:  # the producer sent it twice: it is one record
            return
        gathering.rows.add(message.row)
        gathering.records.append(raw_record(message.row, message.fields, message.error))
        if len(gathering.records) >= job.options["chunkSize"]:
            await self._send((job.job_id, partition))

    async def _send(self, key: tuple[str, int]) -> None:
        gathering = self._gathering.pop(key)
        job = self.batches.open[key[0]]
        if await self.batches.finished(job) is None:
            delivery = await self._produce(job, key[1], gathering)
        else:
            delivery = asyncio.get_running_loop().create_future()
            delivery.set_result(None)
        self._unacknowledged.append((delivery, gathering.read_from))
        await self._settle(wait_for=len(self._unacknowledged) - MAX_UNACKNOWLEDGED)

    async def _settle(self, wait_for: int = 0) -> None:
        """Mark done the offsets of the chunks Kafka acknowledged, oldest first (waiting for the
        oldest `wait_for` of them); a chunk Kafka refused leaves its offsets undone: read again."""
        while self._unacknowledged:
            delivery, read_from = self._unacknowledged[0]
            if not delivery.done() and wait_for <= 0:
                return
            self._unacknowledged.popleft()
            wait_for -= 1
            try:
                await delivery
            except Exception as exc:
                log.warning(
                    "an intake chunk was not acknowledged (%s): its records are read again", exc
                )
                for tp, offset in read_from:
                    self.guard.abandon(tp, offset)
                continue
            for tp, offset in read_from:
                self.guard.done(tp, offset)

    async def _produce(self, job: OpenJob, partition: int, gathering: Gathering) -> Any:
        index = await self._next_index(job.job_id)
        chunk = Chunk(
            job_id=job.job_id,
            job_type=job.job_type.name,
            tenant=job.tenant,
            chunk_index=index,
            partition=partition,
            partition_seq=index % BLOCK,
            options=job.options,
            records=gathering.records,
            json_values=True,
            lane=index // BLOCK,
        )
        headers = [
            *chunk_header(chunk),
            (ORIGIN_HEADER, origin_mark(self._key, job.tenant, job.job_id)),
        ]
        delivery = await self.runtime.chunk_topic.send(
            key=f"{job.job_id}:{index}".encode(),
            value=encode_chunk(chunk, submitted_at_ms=now_ms()),
            partition=partition,
            headers=headers,
        )
        return delivery

    async def _next_index(self, job_id: str) -> int:
        index, end = self._blocks.get(job_id, (0, 0))
        if index >= end:
            index = await asyncio.to_thread(allocate_chunks, self.runtime.engine, job_id, BLOCK)
            end = index + BLOCK
        self._blocks[job_id] = (index + 1, end)
        return index
