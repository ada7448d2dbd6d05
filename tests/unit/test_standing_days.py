"""Days of standing jobs and an input topic's stream time (streams/intake/days.py), and how a
partition's stand gives its stream time (streams/kafka/positions.py)."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition

from streams.intake.days import day_end_ms, day_of, is_over, last_day_over, stream_time
from streams.kafka.positions import Stand

pytestmark = pytest.mark.unit
MIDNIGHT = 1_796_083_200_000  # 2026-12-01T00:00:00Z
GRACE = 900_000  # 15 minutes
TP = TopicPartition("sluice.in.user-import", 0)


def test_a_timestamp_falls_in_its_utc_day_and_the_day_ends_at_midnight() -> None:
    assert day_of(MIDNIGHT - 1) == "2026-11-30"
    assert day_of(MIDNIGHT) == "2026-12-01"
    assert day_end_ms("2026-11-30") == MIDNIGHT


def test_a_day_is_over_on_the_clock_once_its_grace_has_passed() -> None:
    assert not is_over("2026-11-30", MIDNIGHT + GRACE - 1, GRACE)
    assert is_over("2026-11-30", MIDNIGHT + GRACE, GRACE)
    assert is_over("2026-11-30", MIDNIGHT, 0)


def test_the_last_day_over_is_the_one_whose_end_and_grace_the_stream_has_reached() -> None:
    assert last_day_over(MIDNIGHT + GRACE - 1, GRACE) == "2026-11-29"
    assert last_day_over(MIDNIGHT + GRACE, GRACE) == "2026-11-30"
    assert last_day_over(MIDNIGHT + 3 * 86_400_000, GRACE) == "2026-12-02"
    assert last_day_over(MIDNIGHT + 3 * 86_400_000 + GRACE, GRACE) == "2026-12-03"
    assert last_day_over(None, GRACE) is None


def test_the_topics_stream_time_is_its_slowest_partitions() -> None:
    assert stream_time([MIDNIGHT + 5, MIDNIGHT, MIDNIGHT + 9]) == MIDNIGHT
    assert stream_time([MIDNIGHT, None]) is None  # a partition that has read nothing it holds
    assert stream_time([]) is None


def test_a_partition_read_to_its_end_has_reached_the_clock_else_its_last_records() -> None:
    now = MIDNIGHT + GRACE
    assert Stand(TP, committed=10, end=10).reached(now) == now
    assert Stand(TP, committed=0, end=0).reached(now) == now  # empty
    lagging = Stand(TP, committed=4, end=10, last_ms=MIDNIGHT - 5)
    assert not lagging.caught_up and lagging.reached(now) == MIDNIGHT - 5
    assert Stand(TP, committed=4, end=10).reached(now) is None  # its records not read
    ahead = Stand(TP, committed=4, end=10, last_ms=now + 86_400_000)  # a producer's clock ahead
    assert ahead.reached(now) == now
