"""What Sluice reads of Faust's consumer, in one place.

Faust keeps the committed offsets private (`_committed_offset`); the commit guard, the in-order
admission of chunks, the idle check and the queue-depth gauge all need them, and read them
through this module only.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition

from streams.kafka.end_offsets import first_offset_from, probe_options_of


def committed_offsets(faust_consumer: Any) -> Mapping[TopicPartition, int]:
    """The next offset to read of each partition, as Faust last committed it."""
    offsets: Mapping[TopicPartition, int] = faust_consumer._committed_offset
    return offsets


@dataclass(frozen=True)
class Backlog:
    """How far one assigned partition is from its end."""

    tp: TopicPartition
    committed: int | None  # the next offset to read
    highwater: int | None

    @property
    def waiting(self) -> int:
        return max((self.highwater or 0) - (self.committed or 0), 0)

    @property
    def drained(self) -> bool:
        """Consumed and committed up to its high watermark (an empty partition is drained)."""
        if self.highwater is None:
            return False
        if self.highwater == 0:
            return True
        return self.committed is not None and self.committed >= self.highwater

    def __str__(self) -> str:
        where = f"{self.tp.topic}[{self.tp.partition}]"
        return f"{where} committed={self.committed} end={self.highwater}"


class ConsumerView:
    """The running Faust app's consumer, as Sluice's agents and timers use it."""

    def __init__(self, app: Any):
        self._app = app

    @property
    def _consumer(self) -> Any:
        return self._app.consumer

    def committed(self, tp: TopicPartition) -> int | None:
        return committed_offsets(self._consumer).get(tp)

    def assigned(self, topics: Collection[str]) -> list[TopicPartition]:
        """This worker's partitions of `topics` (changelogs and Faust's own topics left out)."""
        return [tp for tp in self._consumer.assignment() if tp.topic in topics]

    def backlog(self, topics: Collection[str]) -> list[Backlog]:
        consumer = self._consumer
        return [
            Backlog(tp, self.committed(tp), consumer.highwater(tp)) for tp in self.assigned(topics)
        ]

    async def position(self, tp: TopicPartition) -> int | None:
        position: int | None = await self._consumer.position(tp)
        return position

    async def seek(self, tp: TopicPartition, offset: int) -> None:
        await self._consumer.seek(tp, offset)

    async def earliest(self, tps: Iterable[TopicPartition]) -> Mapping[TopicPartition, int]:
        offsets: Mapping[TopicPartition, int] = await self._consumer.earliest_offsets(*tps)
        return offsets

    def probe_options(self) -> dict[str, Any]:
        """Connection options for short-lived consumers of the same cluster."""
        return probe_options_of(self._consumer)

    async def first_offset_from(self, tp: TopicPartition, offset: int) -> int | None:
        return await first_offset_from(self.probe_options(), tp, offset)
