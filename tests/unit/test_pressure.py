"""streams/kafka/pressure.py: a full chunk buffer pauses fetching every chunk partition, not
only the one that met it, and its draining resumes them all; other topics are untouched."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition
from faust.transport import consumer as faust_consumer

from streams.kafka import pressure

CHUNKS, PROGRESS = "app.chunks", "app.progress"
ASSIGNED = {TopicPartition(topic, p) for topic in (CHUNKS, PROGRESS) for p in range(4)}

pytestmark = pytest.mark.unit


class Consumer:
    """What Faust's Consumer.on_buffer_full/on_buffer_drop read of themselves."""

    def __init__(self, in_recovery: bool = False):
        self.app = SimpleNamespace(in_recovery=in_recovery)
        self._active_partitions = set(ASSIGNED)
        self._buffered_partitions: set[Any] = set()

    def assignment(self) -> set[TopicPartition]:
        return set(ASSIGNED)

    def _get_active_partitions(self) -> set[TopicPartition]:
        return self._active_partitions


def of(topic: str) -> set[TopicPartition]:
    return {tp for tp in ASSIGNED if tp.topic == topic}


def test_a_full_chunk_buffer_pauses_and_resumes_every_chunk_partition() -> None:
    consumer = Consumer()
    pressure.install(consumer.app, [CHUNKS])
    faust_consumer.Consumer.on_buffer_full(consumer, TopicPartition(CHUNKS, 2))
    assert consumer._active_partitions == of(PROGRESS)  # the next fetch: progress events only
    assert consumer._buffered_partitions == of(CHUNKS)
    faust_consumer.Consumer.on_buffer_drop(consumer, TopicPartition(CHUNKS, 0))
    assert consumer._active_partitions == ASSIGNED
    assert consumer._buffered_partitions == set()


def test_other_topics_pause_alone_and_nothing_pauses_while_tables_recover() -> None:
    consumer = Consumer()
    pressure.install(consumer.app, [CHUNKS])
    faust_consumer.Consumer.on_buffer_full(consumer, TopicPartition(PROGRESS, 1))
    assert consumer._active_partitions == ASSIGNED - {TopicPartition(PROGRESS, 1)}
    recovering = Consumer(in_recovery=True)
    pressure.install(recovering.app, [CHUNKS])
    faust_consumer.Consumer.on_buffer_full(recovering, TopicPartition(CHUNKS, 1))
    assert recovering._active_partitions == ASSIGNED
