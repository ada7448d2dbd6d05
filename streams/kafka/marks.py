"""What the broker holds of an app, read before a worker starts: whether its progress topic ever
held a record, and the marks on its mark topic (streams/worker/broker_loss.py says what they
mean). Short-lived clients that join no group and commit nothing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

log = logging.getLogger(__name__)
MARK_PARTITION = 0
READ_SECONDS = 10.0
TOPIC_EXISTS = 36  # Kafka's TOPIC_ALREADY_EXISTS


@dataclass(frozen=True)
class BrokerLook:
    progress_written: bool  # the progress topic holds, or held, a record
    marks: frozenset[str]  # the marks on the mark topic


async def look(bootstrap_servers: str, progress_topic: str, mark_topic: str) -> BrokerLook:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    try:
        known = await consumer.topics()
        written = progress_topic in known and await _ever_written(consumer, progress_topic)
        marks = await _marks(consumer, mark_topic) if mark_topic in known else frozenset()
    finally:
        await consumer.stop()
    return BrokerLook(written, marks)


async def _ever_written(consumer: AIOKafkaConsumer, topic: str) -> bool:
    """A partition that does not start and end at offset 0 held a record (one whose records
    retention removed starts past 0)."""
    tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
    if not tps:
        return False
    starts = await consumer.beginning_offsets(tps)
    ends = await consumer.end_offsets(tps)
    return any(starts[tp] > 0 or ends[tp] > 0 for tp in tps)


async def _marks(consumer: AIOKafkaConsumer, topic: str) -> frozenset[str]:
    """Every mark on the mark topic's partition, read from its start to its high watermark."""
    tp = TopicPartition(topic, MARK_PARTITION)
    if MARK_PARTITION not in (consumer.partitions_for_topic(topic) or ()):
        return frozenset()
    consumer.assign([tp])
    await consumer.seek_to_beginning(tp)
    found: set[str] = set()
    deadline = time.monotonic() + READ_SECONDS
    while True:
        batch = await consumer.getmany(tp, timeout_ms=200)
        found.update(record.value.decode() for record in batch.get(tp, []) if record.value)
        highwater = consumer.highwater(tp)
        if highwater is not None and await consumer.position(tp) >= highwater:
            return frozenset(found)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{topic} was not read to its end in {READ_SECONDS:.0f}s")


async def write_mark(bootstrap_servers: str, topic: str, mark: str, replication: int) -> None:
    """Put `mark` on the mark topic (made compacted and keyed by mark, so that every mark stays;
    where topics cannot be made here, the broker's auto-creation makes it)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        spec = NewTopic(topic, 1, replication, topic_configs={"cleanup.policy": "compact"})
        answer = await admin.create_topics([spec])
        code = answer.topic_errors[0][1]
        if code not in (0, TOPIC_EXISTS):
            log.info("%s not created (Kafka error %d): left to auto-creation", topic, code)
    except Exception as exc:  # no rights, no controller: auto-creation may still make it
        log.info("%s not created (%s): left to auto-creation", topic, exc)
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            topic, key=mark.encode(), value=mark.encode(), partition=MARK_PARTITION
        )
    finally:
        await producer.stop()
