"""Talking to the test broker and waiting for effects, as an upstream producer would."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams.split import partition_for

PARTITIONS = 4  # SLUICE_PARTITIONS in tests.support.workers.Stack.env
T = TypeVar("T")


def emails_on_one_partition(count: int, prefix: str) -> tuple[int, list[str]]:
    """`count` emails that all hash to the same chunk partition, and that partition."""
    by_partition: dict[int, list[str]] = {}
    for i in range(1_000):
        email = f"{prefix}{i}@example.com"
        found = by_partition.setdefault(partition_for(email, PARTITIONS), [])
        found.append(email)
        if len(found) == count:
            return partition_for(email, PARTITIONS), found
    raise AssertionError("no partition got enough emails")


async def produce(
    servers: str,
    topic: str,
    partition: int,
    messages: list[tuple[bytes, bytes]],
    headers: list[tuple[str, bytes]] | None = None,
) -> list[int]:
    """Send (key, value) pairs to one partition, in order, each with `headers`; their offsets."""
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all")
    await producer.start()
    try:
        offsets = []
        for key, value in messages:
            sent = await producer.send_and_wait(
                topic, value, key=key, partition=partition, headers=headers
            )
            offsets.append(sent.offset)
        return offsets
    finally:
        await producer.stop()


async def read_topic(servers: str, topic: str, want: Callable[[Any], bool], timeout: float) -> Any:
    """The first record of `topic` (all partitions, from the beginning) that `want` accepts."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=servers, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    if want(record):
                        return record
        raise AssertionError(f"no matching record on {topic} within {timeout} s")
    finally:
        await consumer.stop()


def eventually(probe: Callable[[], T | None], what: str, timeout: float = 30) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"{what} not seen within {timeout} s")
