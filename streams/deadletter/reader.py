"""Reading dead-letter topics: what each dead letter says, which ones a filter picks, and a
bounded-memory scan of the topics up to their true end.

A dead letter is named by where it sits: `<dead-letter topic>:<partition>:<offset>`. Lists are
paged by the same name: the cursor is the next dead letter to read.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.exceptions import RequestError
from streams.kafka.end_offsets import fetch_high_watermarks
from streams.models import Chunk
from streams.topics import DEAD_LETTER_SUFFIX
from streams.wire.chunks import decode_chunk

HEADER_PREFIX = "sluice-"
_DURATION = re.compile(r"^([0-9]{1,9})\s*([smhd])$")
_PARTITION, _OFFSET = re.compile(r"[0-9]{1,9}"), re.compile(r"[0-9]{1,18}")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
READ_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class Position:
    topic: str
    partition: int
    offset: int

    @property
    def id(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"

    @classmethod
    def parse(cls, text: str, field: str = "id") -> Position:
        topic, _, rest = text.rpartition(":")
        topic, _, partition = topic.rpartition(":")
        if not (
            topic.endswith(DEAD_LETTER_SUFFIX)
            and _PARTITION.fullmatch(partition)
            and _OFFSET.fullmatch(rest)
        ):
            raise RequestError(
                f"{field} {text[:80]!r} is not a dead letter id (<topic>.dlq:<partition>:<offset>)",
                field=field,
            )
        return cls(topic, int(partition), int(rest))


@dataclass(frozen=True)
class DeadLetter:
    position: Position
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: Mapping[str, str]

    @property
    def id(self) -> str:
        return self.position.id

    def header(self, name: str) -> str | None:
        return self.headers.get(HEADER_PREFIX + name)

    def int_header(self, name: str) -> int | None:
        value = self.header(name)
        return int(value) if value is not None and value.lstrip("-").isdigit() else None

    @property
    def job_id(self) -> str | None:
        return self.header("job-id")

    @property
    def tenant(self) -> str | None:
        """The tenant whose chunk this was, as the worker that dead-lettered it knew it; None
        for what no tenant may see but an admin: undecodable bytes, a chunk naming a tenant
        its producer may not act for (whatever its bytes claim), a dead letter older than
        the header."""
        return self.header("tenant")

    @property
    def error_class(self) -> str:
        return self.header("error-class") or "unknown"

    @property
    def failed_at_ms(self) -> int:
        return self.int_header("last-failure-at") or self.timestamp_ms

    @property
    def source(self) -> Position | None:
        topic, partition = self.header("source-topic"), self.int_header("source-partition")
        offset = self.int_header("source-offset")
        if topic is None or partition is None or offset is None:
            return None
        return Position(topic, partition, offset)

    @property
    def dedup_key(self) -> str:
        """Who it is, also across a broker that lost its log and counts offsets from 0 again."""
        return f"{self.id}@{self.timestamp_ms}"

    def chunk(self) -> Chunk:
        """The chunk its bytes hold; PoisonMessage when they hold none."""
        return decode_chunk(self.value)


def parse_since(text: str, now: datetime | None = None) -> int:
    """`--since` as epoch ms: a duration back from now (`90s`, `15m`, `2h`, `7d`) or an ISO-8601
    time (naive times are UTC)."""
    now = now or datetime.now(UTC)
    value = text.strip()
    match = _DURATION.match(value)
    if match:
        return int(now.timestamp() * 1000) - int(match[1]) * _SECONDS[match[2]] * 1000
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    except (ValueError, OverflowError):
        raise RequestError(
            f"since {text[:40]!r} is neither a duration (90s, 15m, 2h, 7d) nor an ISO-8601 time",
            field="since",
        ) from None


@dataclass(frozen=True)
class Filters:
    job: str | None = None
    error: str | None = None  # error class, case-insensitive
    since_ms: int | None = None
    tenant: str | None = None  # None: every tenant's, and those of no tenant (admin only)

    def matches(self, letter: DeadLetter) -> bool:
        if self.job is not None and letter.job_id != self.job:
            return False
        if self.error is not None and letter.error_class.lower() != self.error.lower():
            return False
        if self.since_ms is not None and letter.failed_at_ms < self.since_ms:
            return False
        return self.tenant is None or letter.tenant == self.tenant


def _letter(record: Any) -> DeadLetter:
    headers = {name: raw.decode(errors="replace") for name, raw in record.headers or ()}
    return DeadLetter(
        Position(record.topic, record.partition, record.offset),
        record.timestamp,
        record.key,
        record.value,
        headers,
    )


class DeadLetterReader:
    """A short-lived consumer (no group, nothing committed) over dead-letter topics."""

    def __init__(self, probe_options: Mapping[str, Any], max_message_bytes: int):
        self.probe_options = dict(probe_options)
        self.max_message_bytes = max_message_bytes

    def _consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            **self.probe_options,
            enable_auto_commit=False,
            group_id=None,
            fetch_max_wait_ms=100,
            max_partition_fetch_bytes=self.max_message_bytes,
            fetch_max_bytes=self.max_message_bytes,
        )

    async def scan(
        self, topics: Sequence[str], start: Position | None = None
    ) -> AsyncGenerator[DeadLetter, None]:
        """Every dead letter of `topics` (in topic, partition, offset order) from `start`, up to
        the end each partition had when the scan began: what a replay publishes and fails again
        is left for the next scan."""
        consumer = self._consumer()
        await consumer.start()
        try:
            known = await consumer.topics()
            partitions = [
                TopicPartition(topic, partition)
                for topic in sorted(set(topics) & known)
                for partition in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            if start is not None:
                first = (start.topic, start.partition)
                partitions = [tp for tp in partitions if (tp.topic, tp.partition) >= first]
            if not partitions:
                return
            listed = await consumer.end_offsets(partitions)
            ends = await fetch_high_watermarks(self.probe_options, listed)
            begins = await consumer.beginning_offsets(partitions)
            for tp in partitions:
                offset = begins[tp]
                if start is not None and (tp.topic, tp.partition) == first:
                    offset = max(offset, start.offset)
                async for letter in self._read(consumer, tp, offset, ends[tp]):
                    yield letter
        finally:
            await consumer.stop()

    async def _read(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int, end: int
    ) -> AsyncIterator[DeadLetter]:
        if offset >= end:
            return
        consumer.assign([tp])
        consumer.seek(tp, offset)
        deadline = time.monotonic() + READ_TIMEOUT_SECONDS
        while offset < end:
            batch = await consumer.getmany(tp, timeout_ms=500, max_records=200)
            records = batch.get(tp, [])
            if not records:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{tp.topic}[{tp.partition}]: no records after {offset}")
                continue
            deadline = time.monotonic() + READ_TIMEOUT_SECONDS
            for record in records:
                if record.offset >= end:
                    return
                offset = record.offset + 1
                yield _letter(record)

    async def fetch(self, position: Position) -> DeadLetter | None:
        """One dead letter by its position, or None when there is none there."""
        async with aclosing(self.scan([position.topic], position)) as letters:
            async for letter in letters:
                return letter if letter.position == position else None
        return None
