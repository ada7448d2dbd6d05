"""Chunks must not hold up progress events in Faust's one consumer.

Faust reads every topic through one consumer and delivers a fetched batch one message at a
time, waiting whenever an agent's buffer is full. The chunk agent's small buffer is full most of
the time during a job (a chunk takes a writer tens of milliseconds or more), and aiokafka hands
out what it has fetched partition by partition in the order it fetched them, so the progress
events fetched after a batch of chunks waited until the chunk agent had taken every one of them.
Measured on SQLite, a job's progress stood still for 4-6 s while its chunks were applied at a
steady 30 per second, then jumped (69 % → 90 % → 100 %).

So a fetch, outside table recovery, takes events of the topics named in `install` (the chunks)
only as many as their agent's buffer has room for, and events of the other topics (progress,
changelogs) first: delivering a batch then never waits on the chunk buffer, and a progress event
waits for little more than the events before it in its own partition. While the chunk buffer
is full a fetch waits at most `FULL_WAIT` seconds for other events, so chunks flow again as soon
as there is room. While tables recover only changelogs are read, and a batch is as large as was
fetched. Measured since: folded progress trails the applied chunks by about a second.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

FULL_WAIT = 0.05  # seconds a fetch waits for other events while the chunk buffer is full

#: one look at what aiokafka has fetched: (partitions, seconds to wait, most records);
#: no partitions means wait, fetch nothing
Look = tuple[frozenset[Any], float, int | None]


def looks(
    active: Iterable[Any],
    last: frozenset[str],
    free: int | None,
    timeout: float,
    max_records: int | None,
    recovering: bool = False,
) -> list[Look]:
    """The fetches to try in turn, the first that returns events wins (the last one's answer
    is the answer): `last` names the topics fetched after the others and only as far as
    `free` places in their agent's buffer allow (None: unknown)."""
    partitions = frozenset(active)
    if recovering:  # only changelogs are read: take all that was fetched
        return [(partitions, timeout, None)]
    first = frozenset(tp for tp in partitions if tp.topic not in last)
    if not last or not partitions or first == partitions:
        return [(partitions, timeout, max_records)]
    if free is not None and free <= 0:  # none of `last` fits: the others, or a short wait
        return [(first, min(timeout, FULL_WAIT), None)]
    cap = free if max_records is None else max_records if free is None else min(free, max_records)
    return [*([(first, 0.0, None)] if first else []), (partitions, timeout, cap)]


def room(app: Any, topics: frozenset[str]) -> int | None:
    """Free places in the fullest buffer of the agents reading `topics`; None if unknown.

    Read from the consumer's thread: a count a moment old is fine, the buffer only takes more
    events than it holds at the cost of one wait."""
    try:
        index = app.topics._topic_name_index
        channels = [c for name in topics for c in list(index.get(name, ()))]
        queues = [c._queue for c in channels if getattr(c, "_queue", None) is not None]
        return min((q.maxsize - q.qsize() for q in queues), default=None)
    except RuntimeError:  # the index changed under us (a rebalance): no opinion this time
        return None


def install(app: Any, topics: Iterable[str]) -> None:
    """Fetch events of `topics` after the others, and only as their agent's buffer has room."""
    app._sluice_fetched_last = frozenset(topics)
    thread_class: Any = faust_aiokafka.AIOKafkaConsumerThread
    if getattr(thread_class, "_sluice_fetch_order_installed", False):
        return
    fetch_records = thread_class._fetch_records

    async def _fetch_records(
        self: Any, consumer: Any, active: Any, timeout: Any = None, max_records: Any = None
    ) -> Any:
        app = self.consumer.app
        if not active:  # None: every partition (a client-only app)
            return await fetch_records(self, consumer, active, timeout, max_records)
        last: frozenset[str] = getattr(app, "_sluice_fetched_last", frozenset())
        free = room(app, last) if last else None
        tries = looks(active, last, free, timeout or 0.0, max_records, app.in_recovery)
        records: Any = {}
        for partitions, wait, cap in tries:
            if not partitions:  # (an empty set would mean every partition to aiokafka)
                await asyncio.sleep(wait)
                continue
            records = await fetch_records(self, consumer, partitions, wait, cap)
            if records:
                break
        return records

    thread_class._fetch_records = _fetch_records
    thread_class._sluice_fetch_order_installed = True
