"""The parked chunks of a partition: which keys they block, and when a retry pass is due."""

from __future__ import annotations

import time

from streams.agents.parking import Lane, Parked


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
