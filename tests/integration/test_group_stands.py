"""Where a consumer group stands on a topic, read from outside the group on the test broker
(streams/kafka/positions.py): committed offsets, true end offsets, the last records' times."""

from __future__ import annotations

import asyncio
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.kafka.positions import group_stands

HOUR_MS = 3_600_000


async def _prepare(servers: str, topic: str, group: str, base_ms: int) -> None:
    """Partition 0: 6 records an hour apart, 4 committed; partition 1: 3 records, all
    committed; partition 2: 2 records, never committed; partition 3: empty."""
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 4, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all")
    await producer.start()
    try:
        for partition, count in ((0, 6), (1, 3), (2, 2)):
            for i in range(count):
                stamp = base_ms + i * HOUR_MS
                await producer.send_and_wait(topic, b"x", partition=partition, timestamp_ms=stamp)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=servers, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        offsets = {TopicPartition(topic, 0): 4, TopicPartition(topic, 1): 3}
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


def test_the_stand_of_each_partition_committed_end_and_last_timestamp(
    kafka_bootstrap: str,
) -> None:
    topic, group = f"stands-{uuid.uuid4().hex[:8]}", f"group-{uuid.uuid4().hex[:8]}"
    base = int(time.time() * 1000) - 2 * 86_400_000
    asyncio.run(_prepare(kafka_bootstrap, topic, group, base))
    options = {"bootstrap_servers": kafka_bootstrap}
    stands = asyncio.run(group_stands(options, group, topic, timestamps=True))
    got = [(s.tp.partition, s.committed, s.end, s.caught_up, s.last_ms) for s in stands]
    assert got == [
        (0, 4, 6, False, base + 3 * HOUR_MS),  # the record before offset 4
        (1, 3, 3, True, None),
        (2, 0, 2, False, None),  # nothing committed: read from its start, nothing read
        (3, 0, 0, True, None),
    ]
    now = base + 10 * HOUR_MS
    assert [s.reached(now) for s in stands] == [base + 3 * HOUR_MS, now, None, now]
    assert asyncio.run(group_stands(options, group, f"{topic}-missing")) == []
