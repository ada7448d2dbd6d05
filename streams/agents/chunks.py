"""The chunk agent: take chunk events in small batches and hand them to the processor
(streams/processing/processor.py), which applies them and reports their outcomes; and the
timer of the stall watch (streams/processing/watch.py)."""

from __future__ import annotations

from typing import Any

from streams.processing.processor import ChunkProcessor
from streams.processing.watch import StallWatch
from streams.runtime import Runtime

BATCH_WITHIN_SECONDS = 0.05
WATCH_INTERVAL = 5.0


def register(runtime: Runtime, processor: ChunkProcessor) -> None:
    batch_size = runtime.settings.batch_chunks

    @runtime.app.agent(runtime.chunk_topic, name="apply-chunks")
    async def apply_chunks(stream: Any) -> None:
        try:
            async for batch in stream.take_events(batch_size, within=BATCH_WITHIN_SECONDS):
                await processor.process_batch([event.message for event in batch])
        finally:
            processor.stop()  # parked chunks were not committed: they are read again

    async def forget_revoked(sender: Any, revoked: set[Any], **kwargs: Any) -> None:
        processor.forget(revoked)

    runtime.app.on_partitions_revoked.connect(forget_revoked)  # type: ignore[arg-type]

    watch = StallWatch(runtime.commit_guard, runtime.settings.stall_seconds)

    @runtime.app.timer(min(WATCH_INTERVAL, runtime.settings.stall_seconds / 2))
    async def watch_for_stalls() -> None:
        watch.check(list(processor.in_flight.values()))
