"""Run a Sluice worker: the Faust worker, optionally in drain-and-exit mode (`--until-idle`).

A worker in `--until-idle` mode stops once every partition assigned to it is consumed up to its
high watermark and committed, nothing is in flight and nothing has happened for
SLUICE_IDLE_SECONDS — like arq's `--burst`, for tests, benchmarks and one-shot jobs.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import time
from typing import Any

import faust

from streams.app import Sluice

log = logging.getLogger(__name__)
IDLE_CHECK_INTERVAL = 0.5
IDLE_REPORT_INTERVAL = 10.0


def lagging(sluice: Sluice) -> list[str]:
    """Assigned source partitions not yet consumed and committed up to their high watermark."""
    consumer: Any = sluice.app.consumer  # Faust's Consumer; its committed offsets are internal
    # changelog partitions are read for recovery and standbys, never committed: leave them out
    sources = {sluice.chunk_topic.get_topic_name(), sluice.progress_topic.get_topic_name()}
    assignment = [tp for tp in consumer.assignment() if tp.topic in sources]
    if not assignment:
        return ["(no partitions assigned yet)"]
    behind = []
    for tp in assignment:
        highwater = consumer.highwater(tp)
        committed = consumer._committed_offset.get(tp)  # the next offset to read
        if highwater is None or (highwater > 0 and (committed is None or committed < highwater)):
            behind.append(f"{tp.topic}[{tp.partition}] committed={committed} end={highwater}")
    return behind


def add_idle_exit(sluice: Sluice) -> None:
    idle_seconds = sluice.settings.idle_seconds
    last_report = [0.0]

    @sluice.app.timer(IDLE_CHECK_INTERVAL)
    async def exit_when_idle() -> None:
        app = sluice.app
        if app.rebalancing or app.in_recovery or sluice.state.chunk_partitions is None:
            sluice.state.touch()
            return
        if sluice.state.busy or sluice.state.idle_for() < idle_seconds:
            return
        behind = lagging(sluice)
        if not behind:
            log.info("idle for %.1f s with nothing left to consume: stopping", idle_seconds)
            os.kill(os.getpid(), signal.SIGTERM)  # the same graceful path as a signal
        elif time.monotonic() - last_report[0] > IDLE_REPORT_INTERVAL:
            last_report[0] = time.monotonic()
            log.info("idle, but not drained: %s", "; ".join(behind))


def tune_gc() -> None:
    """Collect young objects less often: a worker allocates a few containers per record, and
    with Python's default threshold (700) the collector ran every few records, walking the
    records buffered for chunking each time. Memory stays bounded by those buffers."""
    gc.freeze()  # what start-up created lives for the whole process
    gc.set_threshold(50_000, 20, 20)


def run_worker(sluice: Sluice, *, until_idle: bool = False, loglevel: str = "info") -> None:
    """Run until stopped (or, with `until_idle`, until drained)."""
    if until_idle:
        add_idle_exit(sluice)
    tune_gc()
    worker = faust.Worker(sluice.app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
