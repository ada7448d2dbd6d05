"""Drain-and-exit mode (`sluice worker --until-idle`): like arq's `--burst`, for tests,
benchmarks and one-shot jobs.

A worker in this mode stops once every partition assigned to it is consumed up to its high
watermark and committed, nothing is in flight and nothing has happened for
SLUICE_IDLE_SECONDS.
"""

from __future__ import annotations

import logging
import os
import signal
import time

from streams.runtime import Runtime

log = logging.getLogger(__name__)
IDLE_CHECK_INTERVAL = 0.5
IDLE_REPORT_INTERVAL = 10.0


def lagging(runtime: Runtime) -> list[str]:
    """Assigned source partitions not yet consumed and committed up to their high watermark."""
    backlog = runtime.backlog()
    if not backlog:
        return ["(no partitions assigned yet)"]
    return [str(partition) for partition in backlog if not partition.drained]


def exit_when_idle(runtime: Runtime) -> None:
    idle_seconds = runtime.settings.idle_seconds
    app, state = runtime.app, runtime.state
    last_report = [0.0]

    @app.timer(IDLE_CHECK_INTERVAL)
    async def stop_when_drained() -> None:
        if app.rebalancing or app.in_recovery or state.chunk_partitions is None:
            state.touch()
            return
        if state.busy or state.idle_for() < idle_seconds:
            return
        behind = lagging(runtime)
        if not behind:
            log.info("idle for %.1f s with nothing left to consume: stopping", idle_seconds)
            os.kill(os.getpid(), signal.SIGTERM)  # the same graceful path as a signal
        elif time.monotonic() - last_report[0] > IDLE_REPORT_INTERVAL:
            last_report[0] = time.monotonic()
            log.info("idle, but not drained: %s", "; ".join(behind))
