"""Run a Sluice worker: the Faust worker, optionally in drain-and-exit mode (`--until-idle`).

A worker in `--until-idle` mode stops once every partition assigned to it is consumed up to its
high watermark and committed, nothing is in flight and nothing has happened for
SLUICE_IDLE_SECONDS — like arq's `--burst`, for tests, benchmarks and one-shot jobs.
"""

from __future__ import annotations

import logging
import os
import signal

import faust

from streams.app import Sluice

log = logging.getLogger(__name__)
IDLE_CHECK_INTERVAL = 0.5


def drained(sluice: Sluice) -> bool:
    """Every assigned partition is consumed and committed up to its high watermark."""
    consumer = sluice.app.consumer
    assignment = consumer.assignment()
    if not assignment:
        return False
    for tp in assignment:
        highwater = consumer.highwater(tp)
        if highwater is None:
            return False
        committed = consumer._committed_offset.get(tp)  # the next offset to read
        if highwater > 0 and (committed is None or committed < highwater):
            return False
    return True


def add_idle_exit(sluice: Sluice) -> None:
    idle_seconds = sluice.settings.idle_seconds

    @sluice.app.timer(IDLE_CHECK_INTERVAL)
    async def exit_when_idle() -> None:
        app = sluice.app
        if app.rebalancing or app.in_recovery or sluice.state.chunk_partitions is None:
            sluice.state.touch()
            return
        if sluice.state.busy or sluice.state.idle_for() < idle_seconds:
            return
        if drained(sluice):
            log.info("idle for %.1f s with nothing left to consume: stopping", idle_seconds)
            os.kill(os.getpid(), signal.SIGTERM)  # the same graceful path as a signal


def run_worker(sluice: Sluice, *, until_idle: bool = False, loglevel: str = "info") -> None:
    """Run until stopped (or, with `until_idle`, until drained)."""
    if until_idle:
        add_idle_exit(sluice)
    worker = faust.Worker(sluice.app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
