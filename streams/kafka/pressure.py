"""Chunks must not hold up progress events in Faust's one consumer.

Faust reads every topic through one consumer and delivers a fetched batch one message at a
time, waiting whenever an agent's buffer is full. Chunk events fill the chunk agent's small
buffer at once (a chunk takes a writer tens of milliseconds or more), so a batch holding chunks
of several partitions kept the progress events fetched after it waiting for seconds: measured
on SQLite, a job's progress stood still for 4-6 s while its chunks were applied at a steady
30 per second, then jumped (69 % → 90 % → 100 %).

Two changes, kept here:

- Faust stops fetching a partition whose events meet a full buffer (`on_buffer_full`), but only
  that partition: every other chunk partition still returned its batch first. Here a full
  buffer of a topic named in `install` stops fetching every partition of that topic, and its
  draining resumes them together, so the next fetch returns progress and changelog events.
- A fetched batch is small (`broker_max_poll_records`, streams/runtime.py), so a progress event
  waits for at most that many chunks to be taken, except while tables recover: then nothing
  but changelogs is read, and a batch is as large as what was fetched.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka


def _together(consumer: Any, tp: Any) -> list[Any]:
    """`tp` and the other assigned partitions of its topic, if the topic pauses together."""
    topics: frozenset[str] = getattr(consumer.app, "_sluice_pause_together", frozenset())
    if tp.topic not in topics:
        return [tp]
    return [other for other in consumer.assignment() if other.topic == tp.topic]


def install(app: Any, topics: Iterable[str]) -> None:
    """A full buffer of any of `topics` pauses fetching all of that topic's partitions; batches
    are bounded outside table recovery."""
    app._sluice_pause_together = frozenset(topics)
    consumer_class: Any = faust_consumer.Consumer
    if getattr(consumer_class, "_sluice_pause_together_installed", False):
        return
    buffer_full, buffer_drop = consumer_class.on_buffer_full, consumer_class.on_buffer_drop

    def on_buffer_full(self: Any, tp: Any) -> None:
        for each in _together(self, tp):
            buffer_full(self, each)

    def on_buffer_drop(self: Any, tp: Any) -> None:
        for each in _together(self, tp):
            buffer_drop(self, each)

    consumer_class.on_buffer_full = on_buffer_full
    consumer_class.on_buffer_drop = on_buffer_drop
    consumer_class._sluice_pause_together_installed = True
    _unbound_while_recovering()


def _unbound_while_recovering() -> None:
    thread_class: Any = faust_aiokafka.AIOKafkaConsumerThread
    fetch_records = thread_class._fetch_records

    async def _fetch_records(
        self: Any,
        consumer: Any,
        active_partitions: Any,
        timeout: Any = None,
        max_records: Any = None,
    ) -> Any:
        if self.consumer.app.in_recovery:
            max_records = None  # only changelogs are read: take all that was fetched
        return await fetch_records(self, consumer, active_partitions, timeout, max_records)

    thread_class._fetch_records = _fetch_records
