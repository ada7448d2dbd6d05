"""When a worker is ready (what `GET /api/health` answers), and saying so once, when it first
is: the `ready` event, and for `sluice run` the welcome, only once the API really answers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from streams.runtime import Runtime

POLL_SECONDS = 0.2


def is_ready(runtime: Runtime) -> bool:
    """The worker serves: its topics are known, it holds its partitions, its tables are
    recovered (the web server listens before any of this)."""
    app = runtime.app
    return (
        runtime.state.chunk_partitions is not None and not app.rebalancing and not app.in_recovery
    )


def tell_when_ready(runtime: Runtime, tell: Callable[[], None]) -> None:
    """Call `tell` once, the first time the worker is ready."""

    @runtime.app.task
    async def announce_ready() -> None:
        while not is_ready(runtime):
            await asyncio.sleep(POLL_SECONDS)
        tell()
