"""Start-up and periodic chores: declare topics, learn partition counts, measure queue depth,
remove expired jobs."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from streams import retention
from streams.app import Sluice
from streams.metrics import metrics

log = logging.getLogger(__name__)
QUEUE_DEPTH_INTERVAL = 5.0
REPAIR_INTERVAL = 1.0


def register(sluice: Sluice) -> None:
    app = sluice.app

    @app.task
    async def prepare_topics() -> None:
        # Faust declares only the topics its agents subscribe to.
        for topic in sluice.dead_letter_topics:
            await topic.maybe_declare()
        await sluice.chunk_topic.maybe_declare()
        await sluice.progress_topic.maybe_declare()
        # The splitter must route over the partitions the chunk topic really has (an existing
        # topic on a real cluster may differ from SLUICE_PARTITIONS); this also warms the
        # producer's metadata so the first submission does not wait for it.
        producer = app.producer._ensure_producer()  # type: ignore[attr-defined]
        partitions = await producer.partitions_for(sluice.chunk_topic.get_topic_name())
        sluice.state.chunk_partitions = len(partitions)
        await producer.partitions_for(sluice.progress_topic.get_topic_name())
        log.info("chunk topic has %d partitions", len(partitions))

    @app.timer(QUEUE_DEPTH_INTERVAL)
    async def measure_queue_depth() -> None:
        consumer: Any = app.consumer  # Faust's Consumer; its committed offsets are internal
        depth: dict[str, int] = {
            sluice.chunk_topic.get_topic_name(): 0,
            sluice.progress_topic.get_topic_name(): 0,
        }
        for tp in consumer.assignment():
            if tp.topic not in depth:
                continue  # changelogs and Faust's own topics are not queues
            highwater = consumer.highwater(tp) or 0
            committed = consumer._committed_offset.get(tp) or 0
            depth[tp.topic] = depth.get(tp.topic, 0) + max(highwater - committed, 0)
        for topic, waiting in depth.items():
            metrics().queue_depth.labels(topic).set(waiting)

    @app.timer(sluice.settings.retention_interval)
    async def remove_expired_jobs() -> None:
        # every worker runs it: removing a job twice is harmless
        loop = asyncio.get_running_loop()
        now = datetime.now(UTC)
        try:
            removed = await loop.run_in_executor(
                None, retention.remove_expired, sluice.engine, sluice.settings, now
            )
            await retention.announce_removed(sluice, removed, "expired")
        except Exception as exc:  # the database or Kafka may be away: the next run catches up
            log.warning("retention did not run: %s", exc)

    guard = sluice.commit_guard

    async def forget_revoked(sender: Any, revoked: set[Any], **kwargs: Any) -> None:
        guard.forget(revoked)

    async def learn_log_starts(sender: Any, assigned: set[Any], **kwargs: Any) -> None:
        guarded = [tp for tp in assigned if guard.guards(tp)]
        if guarded:
            guard.set_earliest(await app.consumer.earliest_offsets(*guarded))

    app.on_partitions_revoked.connect(forget_revoked)  # type: ignore[arg-type]
    app.on_partitions_assigned.connect(learn_log_starts)  # type: ignore[arg-type]

    @app.timer(REPAIR_INTERVAL)
    async def reread_skipped_offsets() -> None:
        # see streams/kafka/commit_guard.py: offsets Faust skipped during a rebalance or stop
        if sluice.state.busy or app.rebalancing or app.in_recovery:
            return
        consumer: Any = app.consumer
        for tp in consumer.assignment():
            if not guard.guards(tp):
                continue
            committed = consumer._committed_offset.get(tp)
            position = await consumer.position(tp)
            offset = guard.reread_from(tp, position, committed)
            if offset is not None:
                log.warning(
                    "%s[%d]: offsets %d..%d were read but never processed; reading them again",
                    tp.topic,
                    tp.partition,
                    offset,
                    position - 1,
                )
                await consumer.seek(tp, offset)
