"""`dlq replay`: publish dead letters again to the partition they came from, once.

For each dead letter the filters pick and no earlier replay published:
1. a chunk of a job first announces `ReplayRequested` on the progress topic (acknowledged), so
   the job is `active` again before the chunk can be applied and its outcome counted;
2. the original key and bytes go back to the source topic and partition (acknowledged), with a
   `sluice-replay-of` header naming the dead letter;
3. the dead letter is marked replayed in the database (sluice_dead_letter_replays).
A crash between 2 and 3 publishes it again on the next replay, which changes nothing: the chunk
ledger and the progress state count a chunk once. A replayed chunk is applied at the end of its
partition, after chunks that were published later; it is still applied only once.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from contextlib import aclosing
from dataclasses import dataclass, field

from streams.deadletter.listing import reader_of
from streams.deadletter.reader import DeadLetter, Filters
from streams.exceptions import PoisonMessage
from streams.runtime import Runtime
from streams.sink.replays import record_replays, replayed_at
from streams.topics import DEAD_LETTER_SUFFIX
from streams.wire import events
from streams.wire.origin import ORIGIN_HEADER

REPLAY_OF_HEADER = "sluice-replay-of"
MAX_LISTED_IDS = 100
_BATCH = 200


@dataclass
class ReplayReport:
    dry_run: bool
    matched: int = 0  # dead letters the filters picked
    replayed: int = 0  # published again (in a dry run: would be)
    already_replayed: int = 0  # picked, but an earlier replay published them
    jobs: Counter[str] = field(default_factory=Counter)
    ids: list[str] = field(default_factory=list)

    def add(self, letter: DeadLetter) -> None:
        self.replayed += 1
        if letter.job_id:
            self.jobs[letter.job_id] += 1
        if len(self.ids) < MAX_LISTED_IDS:
            self.ids.append(letter.id)


class _Pace:
    """At most `rate` publications per second (None: as fast as the broker acknowledges)."""

    def __init__(self, rate: float | None):
        self.interval = 1.0 / rate if rate else 0.0
        self.next_at = time.monotonic()

    async def wait(self) -> None:
        if not self.interval:
            return
        delay = self.next_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        self.next_at = max(self.next_at, time.monotonic()) + self.interval


async def replay(
    runtime: Runtime, filters: Filters, *, dry_run: bool = False, rate: float | None = None
) -> ReplayReport:
    report = ReplayReport(dry_run)
    pace = _Pace(rate)
    batch: list[DeadLetter] = []

    async def settle() -> None:
        marks = await asyncio.to_thread(
            replayed_at, runtime.engine, [letter.dedup_key for letter in batch]
        )
        published: list[tuple[str, str | None]] = []
        for letter in batch:
            if letter.dedup_key in marks:
                report.already_replayed += 1
                continue
            if not dry_run:
                await pace.wait()
                await _publish_again(runtime, letter)
                published.append((letter.dedup_key, letter.job_id))
            report.add(letter)
        await asyncio.to_thread(record_replays, runtime.engine, published)
        batch.clear()

    async with aclosing(reader_of(runtime).scan(runtime.dead_letter_topic_names)) as letters:
        async for letter in letters:
            if not filters.matches(letter):
                continue
            report.matched += 1
            batch.append(letter)
            if len(batch) >= _BATCH:
                await settle()
    await settle()
    return report


async def _publish_again(runtime: Runtime, letter: DeadLetter) -> None:
    source = letter.source
    topic = source.topic if source else letter.position.topic.removesuffix(DEAD_LETTER_SUFFIX)
    if topic == runtime.chunk_topic.get_topic_name():
        try:
            chunk = letter.chunk()
        except PoisonMessage:
            pass  # no job to reopen: it will be dead-lettered again unless the code changed
        else:
            delivery = await runtime.progress_topic.send(
                key=chunk.job_id, value=events.replay_requested(chunk, letter.id)
            )
            await delivery
    await runtime.app.producer.send_and_wait(
        topic,
        letter.key,
        letter.value,
        partition=source.partition if source else None,
        timestamp=None,
        headers=_headers_again(letter),
    )


def _headers_again(letter: DeadLetter) -> list[tuple[str, bytes]]:
    """The replayed message names its dead letter and keeps the API's origin mark."""
    headers = [(REPLAY_OF_HEADER, letter.id.encode())]
    origin = letter.header("origin")
    if origin is not None:
        headers.append((ORIGIN_HEADER, origin.encode()))
    return headers
