"""Start-up and periodic chores: declare topics, learn partition counts, measure queue depth."""

from __future__ import annotations

import logging

from streams.app import Sluice
from streams.metrics import metrics

log = logging.getLogger(__name__)
QUEUE_DEPTH_INTERVAL = 5.0


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
        producer = app.producer._ensure_producer()  # the aiokafka producer
        partitions = await producer.partitions_for(sluice.chunk_topic.get_topic_name())
        sluice.state.chunk_partitions = len(partitions)
        await producer.partitions_for(sluice.progress_topic.get_topic_name())
        log.info("chunk topic has %d partitions", len(partitions))

    @app.timer(QUEUE_DEPTH_INTERVAL)
    async def measure_queue_depth() -> None:
        consumer = app.consumer
        depth: dict[str, int] = {}
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp) or 0
            committed = consumer._committed_offset.get(tp) or 0
            depth[tp.topic] = depth.get(tp.topic, 0) + max(highwater - committed, 0)
        for topic, waiting in depth.items():
            metrics().queue_depth.labels(topic).set(waiting)
