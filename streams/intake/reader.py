"""The input topics' own Kafka consumer, apart from the Faust consumer of Sluice's topics.

Why not a Faust agent: Faust hands every topic's messages to the agents through one consumer
and one callback, which waits while an agent's buffer is full. Upstream topics hold one small
record per message, often millions; while the intake worked through them, the chunk and progress
topics waited behind it (measured: 150,000 records read in 12 s, and not one chunk applied until
the intake was nearly done). So the input topics are read by a consumer of their own, in the
consumer group `<app>-intake`: a backlog on them never delays the chunks already split.

Offsets are committed here, from the offsets the intake reports done (the commit guard's
contiguous run: streams/kafka/commit_guard.py), so a record is committed only once the chunk
holding it is acknowledged. Before its partitions are taken away in a rebalance, the worker
sends what it gathered and commits what is done; the rest is read again by the next owner, and
the writer drops records that already have a result.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener

from streams.kafka.commit_guard import CommitGuard
from streams.kafka.consumer import Backlog
from streams.runtime import Runtime

log = logging.getLogger(__name__)

TAKE_MESSAGES = 1000
YIELD_EVERY = 100  # messages taken between turns given to the rest of the event loop
COMMIT_EVERY_SECONDS = 1.0
STOP_WITHIN_SECONDS = 10.0  # for the last chunks' acknowledgements when stopping

Take = Callable[[ConsumerRecord], Awaitable[None]]


def intake_group(app_id: str) -> str:
    return f"{app_id}-intake"


class IntakeReader:
    """Reads the input topics in batches and hands each message to `take`; `flush` sends what
    the intake gathered and waits for Kafka's acknowledgements (done offsets follow)."""

    def __init__(self, runtime: Runtime, guard: CommitGuard, take: Take, flush: Callable[[], Any]):
        self.runtime = runtime
        self.guard = guard
        self.take = take
        self.flush = flush
        self.topics = sorted(topic.get_topic_name() for topic in runtime.input_topics.values())
        self._consumer: AIOKafkaConsumer | None = None
        self._committed: dict[TopicPartition, int | None] = {}

    async def run(self) -> None:
        for topic in self.runtime.input_topics.values():
            await topic.maybe_declare()
        consumer = self._consumer = self._make_consumer()
        consumer.subscribe(self.topics, listener=_Listener(self))
        await consumer.start()
        try:
            await self._read(consumer)
        finally:
            await self._stop(consumer)

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        loop = asyncio.get_running_loop()
        next_commit = loop.time() + COMMIT_EVERY_SECONDS
        while True:
            batches = await consumer.getmany(timeout_ms=100, max_records=TAKE_MESSAGES)
            if batches:
                self.runtime.state.touch()
            taken = 0
            for records in batches.values():
                for record in records:
                    self.guard.begin(TopicPartition(record.topic, record.partition), record.offset)
                    await self.take(record)
                    taken += 1
                    if taken % YIELD_EVERY == 0:  # taking rarely waits: let the agents run
                        await asyncio.sleep(0)
            if loop.time() >= next_commit:
                next_commit = loop.time() + COMMIT_EVERY_SECONDS
                await self.commit(consumer.assignment())
                await self._reread_undone(consumer)

    async def commit(self, tps: Iterable[TopicPartition]) -> None:
        """Commit the done offsets of `tps` (a failed commit is tried again on the next round)."""
        consumer = self._consumer
        offsets = {}
        for tp in tps:
            offset = self.guard.commit_offset(tp, self._committed.get(tp))
            if offset is not None:
                offsets[tp] = offset
        if consumer is None or not offsets:
            return
        try:
            await consumer.commit(offsets)
        except Exception as exc:  # a rebalance under way, or the broker away
            log.warning("intake offsets not committed yet: %s", exc)
            return
        self._committed.update(offsets)

    async def _reread_undone(self, consumer: AIOKafkaConsumer) -> None:
        """A chunk Kafka refused leaves its records undone: read them again from there."""
        for tp in consumer.assignment():
            position = await consumer.position(tp)
            offset = self.guard.reread_from(tp, position, self._committed.get(tp))
            if offset is not None:
                log.warning("%s[%d]: reading again from %d", tp.topic, tp.partition, offset)
                consumer.seek(tp, offset)

    async def assigned(self, tps: set[TopicPartition]) -> None:
        consumer = self._consumer
        if consumer is None or not tps:
            return
        for tp in tps:
            self._committed[tp] = await consumer.committed(tp)
        self.guard.set_earliest(await consumer.beginning_offsets(list(tps)))

    async def revoked(self, tps: set[TopicPartition]) -> None:
        """Before another worker reads `tps`: send what was gathered, commit what is done."""
        try:
            await asyncio.wait_for(self.flush(), STOP_WITHIN_SECONDS)
        except Exception as exc:
            log.warning("intake chunks not all acknowledged before a rebalance: %s", exc)
        await self.commit(tps)
        self.guard.forget(tps)
        for tp in tps:
            self._committed.pop(tp, None)

    def backlog(self) -> list[Backlog]:
        """The assigned input partitions and how far behind their ends they are."""
        consumer = self._consumer
        if consumer is None:
            return []
        return [
            Backlog(tp, self._committed.get(tp), consumer.highwater(tp))
            for tp in sorted(consumer.assignment())
        ]

    async def _stop(self, consumer: AIOKafkaConsumer) -> None:
        try:
            await self.revoked(set(consumer.assignment()))
        except Exception as exc:
            log.warning("intake stopped without its last commit: %s", exc)
        finally:
            await consumer.stop()

    def _make_consumer(self) -> AIOKafkaConsumer:
        settings = self.runtime.settings
        return AIOKafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers,
            group_id=intake_group(settings.app_id),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=int(settings.session_timeout * 1000),
            heartbeat_interval_ms=int(settings.heartbeat_interval * 1000),
            rebalance_timeout_ms=int(settings.rebalance_timeout * 1000),
        )


class _Listener(ConsumerRebalanceListener):
    def __init__(self, reader: IntakeReader):
        self.reader = reader

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.reader.revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.reader.assigned(set(assigned))
