"""`dlq list` and `dlq show`: dead letters of this app's topics, with whether they were replayed."""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from streams.app import MAX_MESSAGE_BYTES, Sluice
from streams.deadletter.reader import DeadLetter, DeadLetterReader, Filters, Position
from streams.events import now_ms
from streams.exceptions import RequestError
from streams.kafka.end_offsets import probe_options_of
from streams.sink.replays import replayed_at


def reader_of(sluice: Sluice) -> DeadLetterReader:
    return DeadLetterReader(probe_options_of(sluice.app.consumer), MAX_MESSAGE_BYTES)


def dead_letter_topic_names(sluice: Sluice) -> list[str]:
    return sorted(topic.get_topic_name() for topic in sluice.dead_letter_topics)


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


async def list_dead_letters(
    sluice: Sluice,
    filters: Filters,
    *,
    cursor: str | None = None,
    limit: int = 100,
    include_replayed: bool = False,
) -> Page:
    """Up to `limit` dead letters matching `filters`, from `cursor` on; replayed ones only when
    asked for. Reads the topics in order and stops as soon as the page is full."""
    start = Position.parse(cursor, "cursor") if cursor else None
    topics = dead_letter_topic_names(sluice)
    if start is not None and start.topic not in topics:
        raise RequestError(
            f"cursor {cursor!r} names no dead-letter topic of this app", field="cursor"
        )
    loop = asyncio.get_running_loop()
    items: list[dict[str, Any]] = []
    pending: list[DeadLetter] = []
    next_cursor = None

    async def flush() -> None:
        marks = await loop.run_in_executor(
            None, replayed_at, sluice.engine, [letter.dedup_key for letter in pending]
        )
        now = now_ms()
        for letter in pending:
            at = marks.get(letter.dedup_key)
            if at is None or include_replayed:
                items.append(letter.view(now, at))
        pending.clear()

    async with aclosing(reader_of(sluice).scan(topics, start)) as letters:
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


async def show_dead_letter(sluice: Sluice, dead_letter_id: str) -> dict[str, Any] | None:
    position = Position.parse(dead_letter_id)
    if position.topic not in dead_letter_topic_names(sluice):
        return None
    letter = await reader_of(sluice).fetch(position)
    if letter is None:
        return None
    loop = asyncio.get_running_loop()
    marks = await loop.run_in_executor(None, replayed_at, sluice.engine, [letter.dedup_key])
    return {**letter.view(now_ms(), marks.get(letter.dedup_key)), **letter.details()}
