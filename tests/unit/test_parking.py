"""The parked chunks of a partition: which keys they block, and when a retry pass is due."""

from __future__ import annotations

import asyncio
import time

from streams.processing.parking import Lane, Parked


def test_an_empty_lane_blocks_nothing() -> None:
    assert Lane().blocked_keys() == frozenset()


def test_parked_chunks_block_the_union_of_their_keys() -> None:
    lane = Lane([Parked(None, keys=frozenset({"a", "b"})), Parked(None, keys=frozenset({"c"}))])
    assert lane.blocked_keys() == {"a", "b", "c"}


def test_a_chunk_of_unknown_keys_blocks_everything() -> None:
    lane = Lane([Parked(None, keys=frozenset({"a"})), Parked(None, keys=None)])
    assert lane.blocked_keys() is None


def test_a_pass_waits_for_the_earliest_retry() -> None:
    now = time.monotonic()
    lane = Lane([Parked(None, due=now + 5), Parked(None, due=None), Parked(None, due=now + 2)])
    assert 1.5 < lane.seconds_to_next() <= 2


def test_a_first_chunk_that_waits_for_nothing_is_tried_at_once() -> None:
    lane = Lane([Parked(None, due=None), Parked(None, due=time.monotonic() + 5)])
    assert lane.seconds_to_next() == 0
    assert Parked(None, due=None).is_due(time.monotonic())
    assert not Parked(None, due=time.monotonic() + 1).is_due(time.monotonic())


def test_a_retry_pass_tries_each_due_chunk_against_the_keys_parked_ahead_of_it() -> None:
    a = Parked("a", keys=frozenset({"x"}), due=0.0)
    b = Parked("b", keys=frozenset({"x", "y"}), due=None)  # waits behind a
    c = Parked("c", keys=frozenset({"z"}), due=0.0)
    d = Parked("d", keys=frozenset({"y"}), due=None)  # waits behind b
    lane = Lane([a, b, c, d])
    tried: list[tuple[str, frozenset[str]]] = []

    async def attempt(entry: Parked, blocked: frozenset[str]) -> bool:
        tried.append((entry.message, blocked))
        return entry.message != "a" and entry.keys is not None and entry.keys.isdisjoint(blocked)

    asyncio.run(lane.retry_pass(1.0, attempt))
    assert tried == [
        ("a", frozenset()),
        ("b", frozenset({"x"})),
        ("c", frozenset({"x", "y"})),
        ("d", frozenset({"x", "y"})),
    ]
    assert lane.parked == [a, b, d]  # only c shared nothing with what stays ahead of it


def test_a_pass_stops_at_a_chunk_of_unknown_keys() -> None:
    lane = Lane([Parked("a", keys=None, due=0.0), Parked("b", keys=frozenset({"q"}), due=0.0)])
    tried: list[str] = []

    async def attempt(entry: Parked, blocked: frozenset[str]) -> bool:
        tried.append(entry.message)
        return False

    asyncio.run(lane.retry_pass(1.0, attempt))
    assert tried == ["a"]  # b stays untried behind a chunk whose keys are unknown


def test_a_chunk_not_yet_due_is_not_tried() -> None:
    lane = Lane([Parked("a", keys=frozenset({"x"}), due=10.0)])

    async def attempt(entry: Parked, blocked: frozenset[str]) -> bool:
        raise AssertionError("tried too early")

    asyncio.run(lane.retry_pass(1.0, attempt))
    assert len(lane.parked) == 1
