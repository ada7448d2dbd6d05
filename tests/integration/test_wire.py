"""The chunk topic's wire contract, against a real broker, a real worker and real PostgreSQL.

Chunks are produced straight to the chunk topic, as an upstream producer (or an older Sluice)
would, so these tests check what the worker does with bytes, not what the API sends.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import Engine, text

from streams.chunks import encode_chunk
from streams.codec import CHUNK, codec
from streams.jobtypes.base import Chunk
from streams.jobtypes.user_import import UserImport
from streams.split import partition_for
from tests.support.workers import Stack

pytestmark = pytest.mark.integration

PARTITIONS = 4  # SLUICE_PARTITIONS in tests.support.workers.Stack.env
OPTIONS = UserImport().parse_options({"chunkSize": 100})
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
    servers: str, topic: str, partition: int, messages: list[tuple[bytes, bytes]]
) -> list[int]:
    """Send (key, value) pairs to one partition, in order; their offsets."""
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all")
    await producer.start()
    try:
        offsets = []
        for key, value in messages:
            sent = await producer.send_and_wait(topic, value, key=key, partition=partition)
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


def users_of(db: Engine, job_id: str) -> dict[str, tuple[Any, ...]]:
    with db.connect() as connection:
        rows = connection.execute(
            text("SELECT email, name, country, age FROM users WHERE batch_job_id = :job"),
            {"job": job_id},
        ).all()
    return {row.email: tuple(row) for row in rows}


def ledger_row(db: Engine, job_id: str) -> Any:
    with db.connect() as connection:
        return connection.execute(
            text(
                "SELECT chunk_index, partition, partition_seq, records, successful, failed "
                "FROM sluice_chunks WHERE job_id = :job"
            ),
            {"job": job_id},
        ).first()


def test_a_chunk_of_the_previous_schema_version_is_applied(stack: Stack, db: Engine) -> None:
    stack.worker().wait_ready()
    job_id = str(uuid.uuid4())
    partition, emails = emails_on_one_partition(2, "v1-")
    v1_record = {
        "jobId": job_id,
        "jobType": "user-import",
        "chunkIndex": 0,
        "partitionSeq": 0,
        "options": json.dumps(OPTIONS),
        "records": [
            {"row": 1, "fields": {"email": emails[0], "name": "Ada", "country": "gb"}},
            {"row": 2, "fields": {"email": emails[1].upper(), "name": "Bo", "age": "33"}},
        ],
    }
    value = codec().encode(CHUNK, v1_record, schema_id=1)
    assert codec().schema_id_of(value) == 1
    asyncio.run(
        produce(
            stack.bootstrap_servers,
            f"{stack.app_id}.chunks",
            partition,
            [(f"{job_id}:0".encode(), value)],
        )
    )

    def both_users() -> dict[str, tuple[Any, ...]] | None:
        found = users_of(db, job_id)
        return found if len(found) == 2 else None

    rows = eventually(both_users, "both users of the version 1 chunk")
    assert rows == {
        emails[0]: (emails[0], "Ada", "GB", None),
        emails[1]: (emails[1], "Bo", None, 33),
    }
    ledger = eventually(lambda: ledger_row(db, job_id), "ledger row")
    # version 1 has no partition field: the v2 default (-1) is what the worker saw
    assert tuple(ledger) == (0, -1, 0, 2, 2, 0)


def test_a_poison_message_is_dead_lettered_and_does_not_block_its_partition(
    stack: Stack, db: Engine
) -> None:
    stack.worker().wait_ready()
    chunk_topic = f"{stack.app_id}.chunks"
    job_id = str(uuid.uuid4())
    partition, (email,) = emails_on_one_partition(1, "after-poison-")
    garbage = b"\xde\xad\xbe\xef not a Sluice chunk \x00\x01\x02"
    valid = Chunk(
        job_id=job_id,
        job_type="user-import",
        tenant="default",
        chunk_index=0,
        partition=partition,
        partition_seq=0,
        options=OPTIONS,
        records=[{"row": 1, "fields": {"email": email, "name": "Cy"}, "error": None}],
    )
    poison_offset, _ = asyncio.run(
        produce(
            stack.bootstrap_servers,
            chunk_topic,
            partition,
            [(b"poison-key", garbage), (f"{job_id}:0".encode(), encode_chunk(valid))],
        )
    )

    rows = eventually(lambda: users_of(db, job_id), "the chunk after the poison message")
    assert rows == {email: (email, "Cy", None, None)}
    ledger = eventually(lambda: ledger_row(db, job_id), "ledger row")
    assert tuple(ledger) == (0, partition, 0, 1, 1, 0)

    dead = asyncio.run(
        read_topic(
            stack.bootstrap_servers,
            f"{chunk_topic}.dlq",
            lambda record: record.key == b"poison-key",
            timeout=30,
        )
    )
    assert dead.value == garbage  # the original bytes, untouched
    headers = dict(dead.headers)
    assert headers["sluice-error-class"] == b"PoisonMessage"
    assert headers["sluice-source-topic"] == chunk_topic.encode()
    assert headers["sluice-source-partition"] == str(partition).encode()
    assert headers["sluice-source-offset"] == str(poison_offset).encode()
    assert b"magic" in headers["sluice-error-message"]
    assert "sluice-job-id" not in headers  # nothing could be decoded
