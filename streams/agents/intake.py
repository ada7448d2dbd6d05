"""The intake: the input topics (`<app>.in.<type>`), read by their own consumer
(streams/intake/reader.py). Each message is read (streams/intake/messages.py; a record's value
is JSON or Avro, streams/wire/records.py, the writer schemas of Confluent-framed values fetched
first, streams/intake/registry.py): a record is split onto the chunk topic (streams/intake/
splitter.py), a `begin` opens its batch with its options, an `end` tells the batch's progress how
many records it has; a message no job can take goes to the topic's dead-letter topic with the
reason, and its partition flows on."""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

from aiokafka import TopicPartition

from streams.deadletter import dead_letter
from streams.intake.batches import Batches
from streams.intake.messages import BEGIN, END, Refused, ValueReader, read_message
from streams.intake.reader import IntakeReader
from streams.intake.registry import SchemaRegistry
from streams.intake.splitter import LINGER_SECONDS, IntakeSplitter, Where
from streams.kafka.commit_guard import CommitGuard
from streams.retry import backoff_delay
from streams.runtime import Runtime
from streams.sink.faults import database_away
from streams.wire.records import confluent_schema_id, decode_record_value, record_schemas

log = logging.getLogger(__name__)


def register(runtime: Runtime) -> None:
    if not runtime.input_topics:
        return
    guard = CommitGuard(topic.get_topic_name() for topic in runtime.input_topics.values())
    splitter = IntakeSplitter(runtime, Batches(runtime), guard)
    reader = IntakeReader(runtime, guard, _Taker(runtime, splitter), splitter.flush_all)
    runtime.backlogs.append(reader.backlog)

    @runtime.app.task
    async def read_input_topics() -> None:
        await reader.run()

    @runtime.app.timer(LINGER_SECONDS / 2)
    async def send_lingering_records() -> None:
        await splitter.flush_due()


class _Taker:
    """What is done with one message of an input topic."""

    def __init__(self, runtime: Runtime, splitter: IntakeSplitter):
        settings = runtime.settings
        self.runtime, self.splitter = runtime, splitter
        self.allowed, self.default_tenant = (
            settings.upstream_tenant_names,
            settings.upstream_default_tenant,
        )
        url = settings.schema_registry_url
        self.values = _ValueReaders(SchemaRegistry(url) if url else None)
        topics = runtime.input_topics.items()
        self.job_types = {topic.get_topic_name(): name for name, topic in topics}

    async def __call__(self, message: Any) -> None:
        """Take one message. The database away is waited out; any other failure dead-letters
        this message alone, so that no message can stop the intake (or the worker)."""
        where = (TopicPartition(message.topic, message.partition), message.offset)
        attempt = 0
        while True:
            try:
                await self._take(message, where)
                return
            except Exception as exc:
                if database_away(exc):
                    attempt += 1
                    log.warning("intake waits for the database (%s)", exc)
                    await asyncio.sleep(backoff_delay(attempt))
                    continue
                log.exception("dead-lettering %s: it could not be taken", _where(message))
                await dead_letter(self.runtime.app.producer, message, exc)
                self.splitter.guard.done(*where)
                return

    async def _take(self, message: Any, where: Where) -> None:
        splitter = self.splitter
        try:
            read = read_message(
                job_type=self.job_types[message.topic],
                headers=dict(message.headers or ()),
                value=message.value,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                timestamp_ms=int(message.timestamp),
                default_tenant=self.default_tenant,
                allowed_tenants=self.allowed,
                read_value=await self.values.reader(message.value),
            )
            if read.kind == BEGIN:
                await splitter.batches.begin(read)
            elif read.kind == END:
                await splitter.batches.end(read)
            else:
                await splitter.add(read, where)
                return  # done once its chunk is acknowledged
        except Refused as exc:
            log.warning("dead-lettering %s: %s", _where(message), exc)
            await dead_letter(self.runtime.app.producer, message, exc)
        splitter.guard.done(*where)


def _where(message: Any) -> str:
    return f"{message.topic}[{message.partition}]@{message.offset}"


class _ValueReaders:
    """How one message's value is read: with the registry's writer schema at hand, if framed."""

    def __init__(self, registry: SchemaRegistry | None):
        self.registry = registry
        self.schemas = record_schemas()

    async def reader(self, value: bytes | None) -> ValueReader:
        if self.registry is None:
            return partial(decode_record_value, schemas=self.schemas)
        schema_id = confluent_schema_id(value)
        if schema_id is not None:
            await self.registry.resolve(schema_id)
        return partial(decode_record_value, schemas=self.schemas, writer_of=self.registry.lookup)
