"""Parking: how a chunk waiting for its retry keeps per-key order without holding back its
partition.

A chunk that fails with a retryable error is *parked* with the routing keys of its records and
the time of its next attempt; the partition goes on. Each later chunk of that partition is sent
to the writer with the keys of every chunk parked before it: one that shares a key is not
applied but parked behind them (`Blocked`), the others are applied at once. A parked chunk whose
keys are unknown (its writer process died) holds back every later chunk of the partition.

A retry pass walks the parked chunks in offset order: each one that is due (or waiting) is tried
against the keys of those still parked ahead of it, so chunks that share keys are applied in
offset order and the rest as soon as they can be. Parked offsets are not done, so the commit
guard does not commit past them: a crash or a rebalance re-reads them (the ledger skips what was
applied meanwhile).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from streams.models import ChunkInfo


@dataclass(eq=False)
class Parked:
    message: Any
    info: ChunkInfo | None = None
    #: the keys its records write; None: unknown, so it blocks every later chunk
    keys: frozenset[str] | None = frozenset()
    attempts: int = 0  # failures that spent the retry budget
    waits: int = 0  # failures that waited for the database instead
    first_failure_ms: int = 0
    #: monotonic time it was admitted (the stall watch reads it)
    since: float = field(default_factory=time.monotonic)
    #: monotonic time of its next attempt; None: it waits for a chunk parked ahead of it
    due: float | None = None

    def is_due(self, now: float) -> bool:
        return self.due is None or self.due <= now


#: Try one parked chunk against the keys it must not share; True when it is finished.
Attempt = Callable[[Parked, frozenset[str]], Awaitable[bool]]


@dataclass
class Lane:
    """The parked chunks of one partition, in offset order, and the task retrying them."""

    parked: list[Parked] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    def blocked_keys(self) -> frozenset[str] | None:
        """The keys a new chunk must not share; None: every chunk must wait."""
        keys: set[str] = set()
        for entry in self.parked:
            if entry.keys is None:
                return None
            keys |= entry.keys
        return frozenset(keys)

    def seconds_to_next(self) -> float:
        """How long until a pass has something to try (0: now)."""
        if self.parked and self.parked[0].due is None:
            return 0.0  # the first one waits for nothing any more
        dues = [entry.due for entry in self.parked if entry.due is not None]
        return max(min(dues) - time.monotonic(), 0.0) if dues else 0.0

    async def retry_pass(self, now: float, attempt: Attempt) -> None:
        """Try each due chunk, in offset order, against the keys of those staying parked ahead
        of it; a chunk of unknown keys stops the pass for everything behind it."""
        ahead: set[str] | None = set()
        for entry in list(self.parked):
            tried = ahead is not None and entry.is_due(now)
            if tried and await attempt(entry, frozenset(ahead or ())):
                self.parked.remove(entry)
                continue
            ahead = None if ahead is None or entry.keys is None else ahead | entry.keys


class Parking:
    """Every partition's parked chunks, each partition with a task retrying them."""

    def __init__(self, attempt: Attempt):
        self._attempt = attempt
        self.lanes: dict[Any, Lane] = {}  # partitions with parked chunks

    def blocked_keys(self, tp: Any) -> frozenset[str] | None:
        lane = self.lanes.get(tp)
        return lane.blocked_keys() if lane and lane.parked else frozenset()

    def park(self, tp: Any, entry: Parked) -> None:
        lane = self.lanes.setdefault(tp, Lane())
        lane.parked.append(entry)
        if lane.task is None or lane.task.done():
            lane.task = asyncio.ensure_future(self._retry(tp, lane))

    async def _retry(self, tp: Any, lane: Lane) -> None:
        """Retry passes over a partition's parked chunks until none is left."""
        while lane.parked:
            await asyncio.sleep(lane.seconds_to_next())
            await lane.retry_pass(time.monotonic(), self._attempt)
        if self.lanes.get(tp) is lane:
            del self.lanes[tp]

    def forget(self, tps: Iterable[Any]) -> list[Parked]:
        """Drop the parked chunks of `tps` (revoked: they are the next owner's, as nothing was
        committed past them); those dropped."""
        dropped: list[Parked] = []
        for tp in tps:
            lane = self.lanes.pop(tp, None)
            if lane is None:
                continue
            if lane.task is not None:
                lane.task.cancel()
            dropped += lane.parked
            lane.parked = []
        return dropped
