"""In-order admission: a guarded partition's events are processed strictly in offset order.

Faust may skip an event during a rebalance or a stop (streams/kafka/commit_guard.py). An event
that arrives after such a hole is not processed: the partition is read again from the hole, so
records sharing a key are still applied in submission order. A hole the log really has
(control records, compaction) is stepped over.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from aiokafka import TopicPartition

from streams.kafka.commit_guard import CommitGuard

log = logging.getLogger(__name__)


class Rewinder(Protocol):
    """What admission needs of the consumer (streams.kafka.consumer.ConsumerView)."""

    def committed(self, tp: TopicPartition) -> int | None: ...

    async def seek(self, tp: TopicPartition, offset: int) -> None: ...

    async def first_offset_from(self, tp: TopicPartition, offset: int) -> int | None: ...


class InOrderAdmission:
    def __init__(self, guard: CommitGuard, consumer: Rewinder):
        self.guard = guard
        self.consumer = consumer

    async def admit(self, message: Any) -> bool:
        """True: process this event now. False: drop it (processed before, or the partition is
        read again from an earlier offset)."""
        tp = message.tp
        hole = self.guard.admit(tp, message.offset, self.consumer.committed(tp))
        if hole == -1:
            return False  # applied before this partition was read again
        if hole is not None:
            await self._reread(tp, hole, message.offset)
            return False
        return True

    async def _reread(self, tp: TopicPartition, hole: int, arrived: int) -> None:
        if not self.guard.start_rewind(tp, hole):
            return  # a re-read from there is already under way
        first = await self.consumer.first_offset_from(tp, hole)
        if first is not None and first > hole:
            log.info(
                "%s[%d]: no records in %d..%d; continuing at %d",
                tp.topic,
                tp.partition,
                hole,
                first - 1,
                first,
            )
            self.guard.skip_gap(tp, first)
            hole = first
        log.warning(
            "%s[%d]: offset %d arrived before offset %d was applied; reading again from %d",
            tp.topic,
            tp.partition,
            arrived,
            hole,
            hole,
        )
        await self.consumer.seek(tp, hole)
