"""The chunk processor without a broker: admission in offset order, retries parked by key,
dead-lettering after the budget, poison at once, holes read again, revoked partitions dropped.

The writer processes and the outbox are fakes that follow a script; the commit guard and the
in-order admission are the real ones.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import TopicPartition

from streams.kafka.admission import InOrderAdmission
from streams.kafka.commit_guard import CommitGuard
from streams.models import ChunkInfo, ChunkResult
from streams.processing.parking import Parked
from streams.processing.policy import Failure
from streams.processing.processor import ChunkProcessor
from streams.processing.writer import Applied, ApplyFailed, Blocked
from streams.worker_state import WorkerState

TOPIC = "app.chunks"
TRANSIENT = Failure("ConnectionError", "reset by peer", "transient")
AWAY = Failure("OperationalError", "connection refused", "unavailable")
POISON = Failure("PoisonMessage", "unknown magic byte 116", "poison")


@dataclass
class Message:
    partition: int
    offset: int
    value: bytes
    topic: str = TOPIC
    key: bytes | None = None
    headers: tuple[()] = ()

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)


def chunk(partition: int, offset: int, index: int, keys: set[str], **spec: Any) -> Message:
    """A message whose bytes tell the fake writers what the chunk is and does."""
    body = {"index": index, "partition": partition, "keys": sorted(keys), **spec}
    return Message(partition, offset, json.dumps(body).encode())


@dataclass
class FakeWriters:
    """Applies chunks as their script says: fail `fails` times first, or be poison."""

    applied: list[int] = field(default_factory=list)
    tried: list[tuple[int, frozenset[str]]] = field(default_factory=list)
    fails_left: dict[int, int] = field(default_factory=dict)

    async def apply(
        self, value: bytes, blocked: frozenset[str], headers: Any = None
    ) -> Applied | Blocked:
        spec = json.loads(value)
        if spec.get("poison"):
            raise ApplyFailed(None, POISON)
        options = {"retryAttempts": spec.get("budget", 3)}
        info = ChunkInfo("job-1", "user-import", spec["index"], spec["partition"], 0, options, [1])
        keys = frozenset(spec["keys"])
        self.tried.append((spec["index"], blocked))
        if not keys.isdisjoint(blocked):
            return Blocked(info, keys)
        left = self.fails_left.setdefault(spec["index"], spec.get("fails", 0))
        if left > 0:
            self.fails_left[spec["index"]] = left - 1
            raise ApplyFailed(info, AWAY if spec.get("away") else TRANSIENT, keys)
        self.applied.append(spec["index"])
        return Applied(info, ChunkResult(records=1, successful=1), fresh=True)


@dataclass
class FakeOutbox:
    outcomes: list[tuple[int, bool]] = field(default_factory=list)
    dead_letters: list[tuple[int, int | None, str, int]] = field(default_factory=list)
    waits: list[tuple[int, str]] = field(default_factory=list)

    async def waiting(self, info: ChunkInfo, failure: Failure) -> None:
        self.waits.append((info.chunk_index, failure.reason))

    async def outcome(
        self, info: ChunkInfo, result: ChunkResult, *, dead_lettered: bool = False
    ) -> None:
        self.outcomes.append((info.chunk_index, dead_lettered))

    async def dead_letter(self, entry: Parked, failure: Failure) -> None:
        info = entry.info
        index = info.chunk_index if info else None
        self.dead_letters.append((entry.message.offset, index, failure.error_class, entry.attempts))
        if info is not None:
            await self.outcome(info, ChunkResult(records=1, failed=1), dead_lettered=True)


@dataclass
class FakeConsumer:
    committed_offsets: dict[TopicPartition, int] = field(default_factory=dict)
    seeks: list[tuple[TopicPartition, int]] = field(default_factory=list)

    def committed(self, tp: TopicPartition) -> int | None:
        return self.committed_offsets.get(tp)

    async def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))

    async def first_offset_from(self, tp: TopicPartition, offset: int) -> int | None:
        return offset


@dataclass
class Rig:
    processor: ChunkProcessor
    writers: FakeWriters
    outbox: FakeOutbox
    consumer: FakeConsumer
    guard: CommitGuard
    state: WorkerState


def rig() -> Rig:
    writers, outbox, consumer = FakeWriters(), FakeOutbox(), FakeConsumer()
    guard, state = CommitGuard({TOPIC}), WorkerState()
    processor = ChunkProcessor(writers, outbox, InOrderAdmission(guard, consumer), state)
    return Rig(processor, writers, outbox, consumer, guard, state)


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def run(test: Callable[[Rig], Awaitable[None]]) -> None:
    asyncio.run(test(rig()))


def test_a_partition_is_applied_in_offset_order_and_every_outcome_reported() -> None:
    async def scenario(r: Rig) -> None:
        await r.processor.process_batch(
            [chunk(0, 0, 0, {"a"}), chunk(1, 0, 1, {"b"}), chunk(0, 1, 2, {"c"})]
        )
        assert r.writers.applied.index(0) < r.writers.applied.index(2)
        assert sorted(r.outbox.outcomes) == [(0, False), (1, False), (2, False)]
        tp0 = TopicPartition(TOPIC, 0)
        assert r.guard.commit_offset(tp0, None) is None  # no committed base known yet
        assert r.guard.watermark(tp0, 0) == 2  # both offsets done
        assert r.state.chunks_in_flight == 0

    run(scenario)


def test_a_failing_chunk_waits_only_for_chunks_sharing_its_keys() -> None:
    async def scenario(r: Rig) -> None:
        await r.processor.process_batch(
            [
                chunk(0, 0, 0, {"a"}, fails=2),
                chunk(0, 1, 1, {"b"}),  # other keys: applied at once
                chunk(0, 2, 2, {"a", "c"}),  # shares "a": waits behind chunk 0
            ]
        )
        assert r.outbox.outcomes == [(1, False)]
        assert r.state.chunks_in_flight == 2
        assert r.guard.watermark(TopicPartition(TOPIC, 0), 0) == 0  # the commit stays behind
        await until(lambda: len(r.outbox.outcomes) == 3)
        assert r.writers.applied == [1, 0, 2]
        assert r.outbox.outcomes == [(1, False), (0, False), (2, False)]
        assert r.guard.watermark(TopicPartition(TOPIC, 0), 0) == 3
        assert r.state.chunks_in_flight == 0
        assert r.processor.in_flight == {}

    run(scenario)


def test_a_chunk_failing_past_its_budget_is_dead_lettered_and_counted() -> None:
    async def scenario(r: Rig) -> None:
        await r.processor.process_batch([chunk(0, 0, 0, {"a"}, fails=99, budget=2)])
        await until(lambda: bool(r.outbox.dead_letters))
        assert r.outbox.dead_letters == [(0, 0, "ConnectionError", 3)]  # 1 try + 2 retries
        assert r.outbox.outcomes == [(0, True)]
        assert r.guard.watermark(TopicPartition(TOPIC, 0), 0) == 1
        assert r.state.chunks_in_flight == 0

    run(scenario)


def test_a_poison_chunk_is_dead_lettered_at_once_and_the_partition_goes_on() -> None:
    async def scenario(r: Rig) -> None:
        await r.processor.process_batch([chunk(0, 0, 0, set(), poison=True), chunk(0, 1, 1, {"a"})])
        assert r.outbox.dead_letters == [(0, None, "PoisonMessage", 1)]
        assert r.outbox.outcomes == [(1, False)]  # nothing to count the poison against
        assert r.guard.watermark(TopicPartition(TOPIC, 0), 0) == 2

    run(scenario)


def test_an_event_after_a_hole_is_not_applied_and_the_partition_is_read_again() -> None:
    async def scenario(r: Rig) -> None:
        tp = TopicPartition(TOPIC, 0)
        r.consumer.committed_offsets[tp] = 5
        await r.processor.process_batch([chunk(0, 7, 0, {"a"})])  # 5 and 6 were skipped
        assert r.writers.applied == []
        assert r.consumer.seeks == [(tp, 5)]
        await r.processor.process_batch([chunk(0, 5, 1, {"b"}), chunk(0, 6, 2, {"c"})])
        await r.processor.process_batch([chunk(0, 7, 0, {"a"})])
        assert r.writers.applied == [1, 2, 0]

    run(scenario)


def test_an_offset_admitted_before_is_dropped() -> None:
    async def scenario(r: Rig) -> None:
        await r.processor.process_batch([chunk(0, 0, 0, {"a"}), chunk(0, 1, 1, {"b"})])
        await r.processor.process_batch([chunk(0, 1, 1, {"b"})])  # delivered again
        assert r.writers.applied == [0, 1]

    run(scenario)


def test_revoked_partitions_drop_their_parked_chunks() -> None:
    async def scenario(r: Rig) -> None:
        await r.processor.process_batch([chunk(0, 0, 0, {"a"}, fails=99, budget=10)])
        assert r.state.chunks_in_flight == 1
        assert list(r.processor.in_flight) == [(TopicPartition(TOPIC, 0), 0)]
        r.processor.forget([TopicPartition(TOPIC, 0)])
        assert r.state.chunks_in_flight == 0
        assert r.processor.in_flight == {}
        assert not r.processor.parking.lanes
        await asyncio.sleep(0.3)
        assert r.outbox.outcomes == [] and r.outbox.dead_letters == []

    run(scenario)


@pytest.mark.parametrize("fails", [1, 3])
def test_retries_are_counted_until_the_chunk_succeeds(fails: int) -> None:
    async def scenario(r: Rig) -> None:
        await r.processor.process_batch([chunk(0, 0, 0, {"a"}, fails=fails, budget=3)])
        await until(lambda: bool(r.outbox.outcomes))
        assert r.outbox.outcomes == [(0, False)] and not r.outbox.dead_letters
        assert [index for index, _ in r.writers.tried] == [0] * (fails + 1)

    run(scenario)


def test_a_database_that_is_away_pauses_processing_without_spending_budgets() -> None:
    async def scenario(r: Rig) -> None:
        away = chunk(0, 0, 0, {"a"}, fails=4, away=True, budget=0)
        later = [chunk(0, 1, 1, {"b"}), chunk(1, 0, 2, {"c"})]
        await r.processor.process_batch([away, *later])
        assert r.outbox.outcomes == [] and r.outbox.waits == [(0, "unavailable")]
        assert not r.processor.database_answers.is_set()
        assert r.processor.in_flight.keys() == {(TopicPartition(TOPIC, 0), 0)}  # not the rest
        await until(lambda: bool(r.outbox.outcomes), timeout=10)
        assert r.outbox.outcomes == [(0, False)] and r.processor.database_answers.is_set()
        await r.processor.process_batch(later)  # read again, as the partitions are
        assert sorted(r.outbox.outcomes) == [(0, False), (1, False), (2, False)]
        assert r.outbox.dead_letters == []  # a budget of 0, and four waits: none spent it
        assert r.guard.watermark(TopicPartition(TOPIC, 0), 0) == 2

    run(scenario)
