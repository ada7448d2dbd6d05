"""The stall watch: which chunks and partitions count as stalled, and the gauges it sets."""

from __future__ import annotations

import time

from aiokafka import TopicPartition

from streams.kafka.commit_guard import CommitGuard
from streams.metrics import metrics
from streams.processing.parking import Parked
from streams.processing.watch import StallWatch, find_stalls

TOPIC = "app.chunks"


class Message:
    def __init__(self, partition: int, offset: int):
        self.topic, self.partition, self.offset = TOPIC, partition, offset


def test_chunks_and_partitions_past_the_limit_are_stalled() -> None:
    guard = CommitGuard({TOPIC})
    now = time.monotonic()
    busy, quiet = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
    guard.begin(busy, 5)
    guard.begin(quiet, 9)
    guard.done(quiet, 9)  # nothing in flight on it any more
    old = Parked(Message(0, 5), since=now - 100, waits=3)
    young = Parked(Message(0, 6), since=now - 1)
    stalls = find_stalls([old, young], guard, now + 100, 60)
    assert stalls.chunks == [old, young]  # 200 s and 101 s in flight
    assert find_stalls([old, young], guard, now, 60).chunks == [old]
    assert stalls.partitions == [busy]
    assert find_stalls([old, young], guard, now, 60).partitions == []  # busy for ~0 s
    assert stalls.waiting == 1


def test_a_partition_that_keeps_finishing_chunks_is_not_stalled() -> None:
    guard = CommitGuard({TOPIC})
    tp = TopicPartition(TOPIC, 2)
    guard.begin(tp, 1)
    guard.begin(tp, 2)
    guard.done(tp, 1)  # progress now; 2 still in flight
    assert guard.stalled(time.monotonic() + 30, 60) == []
    assert guard.stalled(time.monotonic() + 61, 60) == [tp]


def test_the_watch_sets_its_gauges() -> None:
    guard = CommitGuard({TOPIC})
    entry = Parked(Message(3, 0), since=time.monotonic() - 500, waits=1)
    guard.begin(TopicPartition(TOPIC, 3), 0)
    StallWatch(guard, 0.0).check([entry])
    assert metrics().chunks_stalled._value.get() == 1
    assert metrics().chunks_waiting._value.get() == 1
    StallWatch(guard, 0.0).check([])
    assert metrics().chunks_stalled._value.get() == 0
