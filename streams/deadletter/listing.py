"""`dlq list` and `dlq show`: dead letters of this app's topics, with whether they were replayed."""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime

from streams.deadletter.reader import DeadLetter, DeadLetterReader, Filters, Position
from streams.exceptions import RequestError
from streams.runtime import MAX_MESSAGE_BYTES, Runtime
from streams.sink.replays import replayed_at


def reader_of(runtime: Runtime) -> DeadLetterReader:
    return DeadLetterReader(runtime.consumer.probe_options(), MAX_MESSAGE_BYTES)


#: a dead letter, and when it was replayed (None: never)
Listed = tuple[DeadLetter, datetime | None]


@dataclass(frozen=True)
class Page:
    letters: list[Listed]
    next_cursor: str | None


async def list_dead_letters(
    runtime: Runtime,
    filters: Filters,
    *,
    cursor: str | None = None,
    limit: int = 100,
    include_replayed: bool = False,
) -> Page:
    """Up to `limit` dead letters matching `filters`, from `cursor` on; replayed ones only when
    asked for. Reads the topics in order and stops as soon as the page is full."""
    start = Position.parse(cursor, "cursor") if cursor else None
    topics = runtime.dead_letter_topic_names
    if start is not None and start.topic not in topics:
        raise RequestError(
            f"cursor {cursor!r} names no dead-letter topic of this app", field="cursor"
        )
    items: list[Listed] = []
    pending: list[DeadLetter] = []
    next_cursor = None

    async def flush() -> None:
        marks = await asyncio.to_thread(
            replayed_at, runtime.engine, [letter.dedup_key for letter in pending]
        )
        for letter in pending:
            at = marks.get(letter.dedup_key)
            if at is None or include_replayed:
                items.append((letter, at))
        pending.clear()

    async with aclosing(reader_of(runtime).scan(topics, start)) as letters:
        async for letter in letters:
            if len(items) >= limit:
                next_cursor = letter.id
                break
            if filters.matches(letter):
                pending.append(letter)
            if len(pending) >= limit - len(items):
                await flush()
    await flush()
    return Page(items[:limit], next_cursor)


async def show_dead_letter(runtime: Runtime, dead_letter_id: str) -> Listed | None:
    position = Position.parse(dead_letter_id)
    if position.topic not in runtime.dead_letter_topic_names:
        return None
    letter = await reader_of(runtime).fetch(position)
    if letter is None:
        return None
    marks = await asyncio.to_thread(replayed_at, runtime.engine, [letter.dedup_key])
    return letter, marks.get(letter.dedup_key)
