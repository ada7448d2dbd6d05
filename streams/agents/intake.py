"""The intake: the input topics (`<app>.in.<type>`), read by their own consumer
(streams/intake/reader.py). Each message is read (streams/intake/messages.py; a record's value
is JSON or Avro, streams/wire/records.py, the writer schemas of Confluent-framed values fetched
first, streams/intake/registry.py): a record is split onto the chunk topic (streams/intake/
splitter.py), a `begin` opens its batch with its options, an `end` tells the batch's progress how
many records it has; a message no job can take goes to the topic's dead-letter topic with the
reason, and its partition flows on."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from aiokafka import TopicPartition

from streams.deadletter import dead_letter
from streams.intake.batches import Batches
from streams.intake.messages import BEGIN, END, Refused, ValueReader, read_message
from streams.intake.reader import IntakeReader
from streams.intake.registry import SchemaRegistry
from streams.intake.splitter import LINGER_SECONDS, IntakeSplitter
from streams.kafka.commit_guard import CommitGuard
from streams.runtime import Runtime
from streams.wire.records import confluent_schema_id, decode_record_value, record_schemas

log = logging.getLogger(__name__)


def register(runtime: Runtime) -> None:
    if not runtime.input_topics:
        return
    guard = CommitGuard(topic.get_topic_name() for topic in runtime.input_topics.values())
    splitter = IntakeSplitter(runtime, Batches(runtime), guard)
    reader = IntakeReader(runtime, guard, _taker(runtime, splitter), splitter.flush_all)
    runtime.backlogs.append(reader.backlog)

    @runtime.app.task
    async def read_input_topics() -> None:
        await reader.run()

    @runtime.app.timer(LINGER_SECONDS / 2)
    async def send_lingering_records() -> None:
        await splitter.flush_due()


def _taker(runtime: Runtime, splitter: IntakeSplitter) -> Any:
    """What is done with one message of an input topic."""
    settings = runtime.settings
    allowed, default_tenant = settings.upstream_tenant_names, settings.upstream_default_tenant
    url = settings.schema_registry_url
    values = _ValueReaders(SchemaRegistry(url) if url else None)

    async def take(message: Any) -> None:
        where = (TopicPartition(message.topic, message.partition), message.offset)
        try:
            read = read_message(
                job_type=job_type_of(message.topic),
                headers=dict(message.headers or ()),
                value=message.value,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                timestamp_ms=int(message.timestamp),
                default_tenant=default_tenant,
                allowed_tenants=allowed,
                read_value=await values.reader(message.value),
            )
            if read.kind == BEGIN:
                await splitter.batches.begin(read)
            elif read.kind == END:
                await splitter.batches.end(read)
            else:
                await splitter.add(read, where)
                return  # done once its chunk is acknowledged
        except Refused as exc:
            log.warning(
                "dead-lettering %s[%d]@%d: %s",
                message.topic,
                message.partition,
                message.offset,
                exc,
            )
            await dead_letter(runtime.app.producer, message, exc)
        splitter.guard.done(*where)

    job_types = {topic.get_topic_name(): name for name, topic in runtime.input_topics.items()}
    job_type_of = job_types.__getitem__
    return take


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
