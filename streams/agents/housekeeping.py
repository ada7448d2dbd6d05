"""Start-up and periodic chores: declare topics, learn partition counts, measure queue depth,
remove expired jobs, and keep the commit guard in step with assignments."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from streams import retention
from streams.metrics import metrics
from streams.runtime import Runtime

log = logging.getLogger(__name__)
QUEUE_DEPTH_INTERVAL = 5.0
REPAIR_INTERVAL = 1.0


def register(runtime: Runtime) -> None:
    _prepare_topics(runtime)
    _measure_queue_depth(runtime)
    _remove_expired_jobs(runtime)
    _guard_assignments(runtime)
    _reread_skipped_offsets(runtime)


def _prepare_topics(runtime: Runtime) -> None:
    @runtime.app.task
    async def prepare_topics() -> None:
        # Faust declares only the topics its agents subscribe to.
        for topic in runtime.dead_letter_topics:
            await topic.maybe_declare()
        await runtime.chunk_topic.maybe_declare()
        await runtime.progress_topic.maybe_declare()
        await runtime.outcome_topic.maybe_declare()
        # The splitter must route over the partitions the chunk topic really has (an existing
        # topic on a real cluster may differ from SLUICE_PARTITIONS); this also warms the
        # producer's metadata so the first submission does not wait for it.
        producer = runtime.app.producer._ensure_producer()  # type: ignore[attr-defined]
        partitions = await producer.partitions_for(runtime.chunk_topic.get_topic_name())
        runtime.state.chunk_partitions = len(partitions)
        await producer.partitions_for(runtime.progress_topic.get_topic_name())
        log.info("chunk topic has %d partitions", len(partitions))


def _measure_queue_depth(runtime: Runtime) -> None:
    @runtime.app.timer(QUEUE_DEPTH_INTERVAL)
    async def measure_queue_depth() -> None:
        depth = dict.fromkeys(runtime.consumed_topics, 0)
        for backlog in runtime.backlog():
            depth[backlog.tp.topic] += backlog.waiting
        for topic, waiting in depth.items():
            metrics().queue_depth.labels(topic).set(waiting)


def _remove_expired_jobs(runtime: Runtime) -> None:
    @runtime.app.timer(runtime.settings.retention_interval)
    async def remove_expired_jobs() -> None:
        # every worker runs it: removing a job twice is harmless
        now = datetime.now(UTC)
        try:
            removed = await asyncio.to_thread(
                retention.remove_expired, runtime.engine, runtime.settings, now
            )
            await retention.announce_removed(runtime.progress_topic, removed, "expired")
        except Exception as exc:  # the database or Kafka may be away: the next run catches up
            log.warning("retention did not run: %s", exc)


def _guard_assignments(runtime: Runtime) -> None:
    guard = runtime.commit_guard

    async def forget_revoked(sender: Any, revoked: set[Any], **kwargs: Any) -> None:
        guard.forget(revoked)

    async def learn_log_starts(sender: Any, assigned: set[Any], **kwargs: Any) -> None:
        guarded = [tp for tp in assigned if guard.guards(tp)]
        if guarded:
            guard.set_earliest(await runtime.consumer.earliest(guarded))

    runtime.app.on_partitions_revoked.connect(forget_revoked)  # type: ignore[arg-type]
    runtime.app.on_partitions_assigned.connect(learn_log_starts)  # type: ignore[arg-type]


def _reread_skipped_offsets(runtime: Runtime) -> None:
    app, guard, consumer = runtime.app, runtime.commit_guard, runtime.consumer

    @app.timer(REPAIR_INTERVAL)
    async def reread_skipped_offsets() -> None:
        # see streams/kafka/commit_guard.py: offsets Faust skipped during a rebalance or stop
        if runtime.state.busy or app.rebalancing or app.in_recovery:
            return
        for tp in consumer.assigned(guard.topics):
            position = await consumer.position(tp)
            offset = guard.reread_from(tp, position, consumer.committed(tp))
            if offset is not None and position is not None:
                log.warning(
                    "%s[%d]: offsets %d..%d were read but never processed; reading them again",
                    tp.topic,
                    tp.partition,
                    offset,
                    position - 1,
                )
                await consumer.seek(tp, offset)
