"""Where the workers' consumer group stands on a topic, read from outside the group.

The standing-job closer (streams/agents/standing.py) needs every partition of a topic, not only
those this worker reads, and must not trust a worker's memory: it reads the group's committed
offsets (OffsetFetch, from a consumer that joins no group: what any worker taking a partition
over reads from), the true end offsets (streams/kafka/end_offsets.py) and, for a partition not
read to its end, the timestamps of the last records before its committed offset.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.kafka.end_offsets import fetch_high_watermarks

LOOK_BACK = 16  # records before a committed offset whose timestamps are read
TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Stand:
    """Where the group stands on one partition."""

    tp: TopicPartition
    committed: int  # the next offset the group reads (the log's start when it never committed)
    end: int
    last_ms: int | None = None  # the latest timestamp among the last records committed

    @property
    def caught_up(self) -> bool:
        return self.committed >= self.end

    def reached(self, now_ms: int) -> int | None:
        """The partition's stream time: `now_ms` (taken before its offsets were read) when it
        was read to its end, else the last records' timestamp (None: none was read), never
        past `now_ms` (a producer's clock ahead closes no day early)."""
        if self.caught_up:
            return now_ms
        return None if self.last_ms is None else min(self.last_ms, now_ms)


async def group_stands(
    probe_options: Mapping[str, Any],
    group: str,
    topic: str,
    *,
    timestamps: bool = False,
    timeout: float = TIMEOUT_SECONDS,
) -> list[Stand]:
    """The group's stand on every partition of `topic` (committed offsets first, then the end
    offsets: a partition found caught up was so when its committed offset was read). With
    `timestamps`, a partition not caught up gets its `last_ms`. Raises when Kafka does not
    answer; a topic Kafka does not know has no partitions."""
    probe = AIOKafkaConsumer(**probe_options, group_id=group, enable_auto_commit=False)
    await probe.start()
    try:
        partitions = probe.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, partition) for partition in sorted(partitions)]
        committed = {tp: await probe.committed(tp) for tp in tps}
        starts = await probe.beginning_offsets(tps) if tps else {}
        listed = await probe.end_offsets(tps) if tps else {}
    finally:
        await probe.stop()
    ends = await fetch_high_watermarks(probe_options, listed, timeout)
    # never committed, or committed before what the log still holds: read from its start
    nexts = {tp: max(committed[tp] or 0, starts[tp]) for tp in tps}
    lagging = {tp: nexts[tp] for tp in tps if starts[tp] < nexts[tp] < ends[tp]}
    last = await _last_timestamps(probe_options, lagging, starts, timeout) if timestamps else {}
    return [Stand(tp, nexts[tp], ends[tp], last.get(tp)) for tp in tps]


async def _last_timestamps(
    probe_options: Mapping[str, Any],
    before: Mapping[TopicPartition, int],
    starts: Mapping[TopicPartition, int],
    timeout: float,
) -> dict[TopicPartition, int]:
    """The latest timestamp among the LOOK_BACK records before each partition's offset (fewer
    when some are gone or are transaction markers); a partition found none of is left out."""
    if not before:
        return {}
    probe = AIOKafkaConsumer(
        **probe_options, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=50
    )
    await probe.start()
    found: dict[TopicPartition, int] = {}
    try:
        probe.assign(list(before))
        for tp, offset in before.items():
            probe.seek(tp, max(starts[tp], offset - LOOK_BACK))
        pending = set(before)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            batch = await probe.getmany(*pending, timeout_ms=200)
            for tp, records in batch.items():
                for record in records:
                    if record.offset < before[tp]:
                        found[tp] = max(found.get(tp, record.timestamp), record.timestamp)
                if records and records[-1].offset >= before[tp] - 1:
                    pending.discard(tp)
    finally:
        await probe.stop()
    return found
