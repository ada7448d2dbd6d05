"""End offsets that are right on every broker, including the embedded dev broker.

Tansu answers ListOffsets(LATEST) with the base offset of the last stored batch + 1 instead of
the last offset + 1, while the high watermark in Fetch responses is right (shared/BROKER.md).
Faust's table recovery reads end offsets to know when a changelog is replayed, so without this
it stops early and tables come back wrong. The fix, kept in this one place: for every partition
whose listed end is above zero, fetch from `listed - 1` and take the high watermark of the fetch
response. On Apache Kafka the two agree, so the fix costs one small fetch per partition during
recovery and changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka

_CLIENT_SECURITY_OPTIONS = {
    "security_protocol": "_security_protocol",
    "ssl_context": "_ssl_context",
    "sasl_mechanism": "_sasl_mechanism",
    "sasl_plain_username": "_sasl_plain_username",
    "sasl_plain_password": "_sasl_plain_password",
}


def _probe_options(consumer: AIOKafkaConsumer) -> dict[str, Any]:
    client = consumer._client
    options: dict[str, Any] = {"bootstrap_servers": client._bootstrap_servers}
    for option, attribute in _CLIENT_SECURITY_OPTIONS.items():
        value = getattr(client, attribute, None)
        if value is not None:
            options[option] = value
    return options


async def fetch_high_watermarks(
    probe_options: Mapping[str, Any],
    listed: Mapping[TopicPartition, int],
    timeout: float = 10.0,
) -> dict[TopicPartition, int]:
    """High watermarks from Fetch responses, starting one record before each listed end."""
    suspects = [tp for tp, end in listed.items() if end > 0]
    result = dict(listed)
    if not suspects:
        return result
    probe = AIOKafkaConsumer(
        **probe_options, enable_auto_commit=False, group_id=None, fetch_max_wait_ms=50
    )
    await probe.start()
    try:
        probe.assign(suspects)
        for tp in suspects:
            probe.seek(tp, listed[tp] - 1)
        pending = set(suspects)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            await probe.getmany(*pending, timeout_ms=200, max_records=1)
            for tp in list(pending):
                highwater = probe.highwater(tp)
                if highwater is not None:
                    result[tp] = max(listed[tp], highwater)
                    pending.discard(tp)
        if pending:
            raise TimeoutError(f"no fetch response for {sorted(map(str, pending))}")
    finally:
        await probe.stop()
    return result


async def true_end_offsets(
    consumer: AIOKafkaConsumer, partitions: Iterable[TopicPartition]
) -> dict[TopicPartition, int]:
    """`consumer.end_offsets`, corrected from fetch high watermarks."""
    listed = await consumer.end_offsets(list(partitions))
    return await fetch_high_watermarks(_probe_options(consumer), listed)


def install_faust_fix() -> None:
    """Make Faust's aiokafka consumer thread use `true_end_offsets` for its highwaters.

    Faust's recovery and lag reporting all go through `AIOKafkaConsumerThread._highwaters`.
    """
    thread_class: Any = faust_aiokafka.AIOKafkaConsumerThread
    if getattr(thread_class, "_sluice_end_offsets_fixed", False):
        return
    original = thread_class._highwaters

    async def _highwaters(self: Any, partitions: list[TopicPartition]) -> Mapping[Any, int]:
        if self.consumer.in_transaction:
            return await original(self, partitions)
        return await true_end_offsets(self._ensure_consumer(), partitions)

    thread_class._highwaters = _highwaters
    thread_class._sluice_end_offsets_fixed = True


async def first_offset_from(
    probe_options: Mapping[str, Any], tp: TopicPartition, offset: int, timeout: float = 10.0
) -> int | None:
    """The offset of the first record at or after `offset` in `tp`, or None if there is none."""
    probe = AIOKafkaConsumer(
        **probe_options, enable_auto_commit=False, group_id=None, fetch_max_wait_ms=50
    )
    await probe.start()
    try:
        probe.assign([tp])
        probe.seek(tp, offset)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = await probe.getmany(tp, timeout_ms=200, max_records=1)
            records = batch.get(tp)
            if records:
                return int(records[0].offset)
            highwater = probe.highwater(tp)
            if highwater is not None and highwater <= offset:
                return None
        return None
    finally:
        await probe.stop()


def probe_options_of(faust_consumer: Any) -> dict[str, Any]:
    """Connection options of a running Faust consumer, for short-lived probe consumers."""
    return _probe_options(faust_consumer._thread._ensure_consumer())
