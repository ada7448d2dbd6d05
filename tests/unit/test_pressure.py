"""streams/kafka/pressure.py: progress events and changelogs are fetched before chunks, chunks
only as far as the chunk agent's buffer has room (so delivering a batch never waits on it), and
everything at once while tables recover."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition

from streams.kafka.pressure import FULL_WAIT, looks, room

CHUNKS, PROGRESS, CHANGELOG = "app.chunks", "app.progress", "app-job-progress-changelog"
LAST = frozenset({CHUNKS})
ACTIVE = {TopicPartition(t, p) for t in (CHUNKS, PROGRESS, CHANGELOG) for p in range(4)}
OTHERS = frozenset(tp for tp in ACTIVE if tp.topic != CHUNKS)

pytestmark = pytest.mark.unit


def test_the_others_first_then_chunks_as_far_as_the_buffer_has_room() -> None:
    assert looks(ACTIVE, LAST, free=5, timeout=1.0, max_records=None) == [
        (OTHERS, 0.0, None),  # a look at what is fetched already: it does not wait
        (frozenset(ACTIVE), 1.0, 5),  # then Faust's own fetch, at most 5 events
    ]
    assert looks(ACTIVE, LAST, free=5, timeout=1.0, max_records=3)[-1] == (
        frozenset(ACTIVE),
        1.0,
        3,
    )


def test_a_full_chunk_buffer_fetches_only_the_others_and_waits_briefly() -> None:
    assert looks(ACTIVE, LAST, free=0, timeout=1.0, max_records=None) == [(OTHERS, FULL_WAIT, None)]
    chunks_only = {tp for tp in ACTIVE if tp.topic == CHUNKS}
    assert looks(chunks_only, LAST, free=0, timeout=1.0, max_records=None) == [
        (frozenset(), FULL_WAIT, None)  # nothing to fetch: a short wait, then look again
    ]


def test_recovery_and_other_cases_are_faust_s_own_fetch() -> None:
    assert looks(ACTIVE, LAST, free=0, timeout=1.0, max_records=16, recovering=True) == [
        (frozenset(ACTIVE), 1.0, None)  # only changelogs are read: take all that was fetched
    ]
    assert looks(OTHERS, LAST, free=0, timeout=1.0, max_records=16) == [(OTHERS, 1.0, 16)]
    assert looks(ACTIVE, frozenset(), free=None, timeout=1.0, max_records=None) == [
        (frozenset(ACTIVE), 1.0, None)
    ]
    assert looks(ACTIVE, LAST, free=None, timeout=1.0, max_records=None)[-1][2] is None


def test_room_is_what_the_fullest_buffer_of_the_topic_s_agents_can_take() -> None:
    def channel(held: int) -> SimpleNamespace:
        queue: asyncio.Queue[int] = asyncio.Queue(maxsize=16)
        for n in range(held):
            queue.put_nowait(n)
        return SimpleNamespace(_queue=queue)

    index = {CHUNKS: [channel(10), channel(3)], PROGRESS: [channel(16)]}
    app = SimpleNamespace(topics=SimpleNamespace(_topic_name_index=index))
    assert room(app, LAST) == 6
    assert room(app, frozenset({"app.unknown"})) is None
    index[CHUNKS] = [SimpleNamespace(_queue=None)]  # an agent that has not started reading
    assert room(app, LAST) is None
