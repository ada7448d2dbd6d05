"""The intake agents: one per input topic (`<app>.in.<type>`). Each message is read
(streams/intake/messages.py; a record's value is JSON or Avro, streams/wire/records.py, the
writer schemas of Confluent-framed values fetched first, streams/intake/registry.py): a record
is split onto the chunk topic (streams/intake/splitter.py), a `begin` opens its batch with its
options, an `end` tells the batch's progress how many records it has; a message no job can take
goes to the topic's dead-letter topic with the reason, and its partition flows on."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from streams.deadletter import dead_letter
from streams.intake.batches import Batches
from streams.intake.messages import BEGIN, END, Refused, ValueReader, read_message
from streams.intake.registry import SchemaRegistry
from streams.intake.splitter import LINGER_SECONDS, IntakeSplitter
from streams.runtime import Runtime
from streams.wire import events
from streams.wire.records import confluent_schema_id, decode_record_value, record_schemas

log = logging.getLogger(__name__)
TAKE_MESSAGES = 1000
TAKE_WITHIN_SECONDS = 0.05


def register(runtime: Runtime) -> None:
    splitter = IntakeSplitter(runtime, Batches(runtime))
    for job_type, topic in runtime.input_topics.items():
        _register_topic(runtime, splitter, job_type, topic)

    @runtime.app.timer(LINGER_SECONDS / 2)
    async def send_lingering_records() -> None:
        await splitter.flush_due()


def _register_topic(runtime: Runtime, splitter: IntakeSplitter, job_type: str, topic: Any) -> None:
    settings, guard = runtime.settings, runtime.commit_guard
    allowed, default_tenant = settings.upstream_tenant_names, settings.upstream_default_tenant
    url = settings.schema_registry_url
    values = _ValueReaders(SchemaRegistry(url) if url else None)

    @runtime.app.agent(topic, name=f"intake-{job_type}")
    async def take_records(stream: Any) -> None:
        # in batches: one message is one record, and Faust's per-event step costs more than
        # reading the record
        async for batch in stream.take_events(TAKE_MESSAGES, within=TAKE_WITHIN_SECONDS):
            runtime.state.touch()
            for event in batch:
                await take(event.message)

    async def take(message: Any) -> None:
        guard.begin(message.tp, message.offset)
        try:
            read = read_message(
                job_type=job_type,
                headers={k: v for k, v in (message.headers or [])},
                value=message.value,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                timestamp_ms=int(message.timestamp * 1000),
                default_tenant=default_tenant,
                allowed_tenants=allowed,
                read_value=await values.reader(message.value),
            )
            if read.kind == BEGIN:
                await splitter.batches.begin(read)
            elif read.kind == END:
                ended = events.batch_ended(read.job_id, read.count or 0)
                await (await runtime.progress_topic.send(key=read.job_id, value=ended))
            else:
                await splitter.add(read, (message.tp, message.offset))
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
        guard.done(message.tp, message.offset)


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
