"""Timers that look over the jobs this worker owns look again soon after its partitions move:
a rebalance or a table recovery may have handed it jobs that wait for it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streams.runtime import Runtime


def rescan_when_jobs_move(runtime: Runtime, rescan_soon: Callable[[], None]) -> None:
    async def on_assigned(sender: Any, assigned: set[Any], **kwargs: Any) -> None:
        rescan_soon()

    async def on_recovered() -> None:
        rescan_soon()

    runtime.app.on_partitions_assigned.connect(on_assigned)  # type: ignore[arg-type]
    runtime.progress_table.on_recover(on_recovered)
