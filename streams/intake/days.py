"""UTC days of standing jobs, and which of them an input topic has read past (pure).

A record without a batch joins the standing job of its message timestamp's UTC day. The day D
is over for an input topic when the topic's *stream time* has passed the end of D plus the grace
period (SLUICE_STANDING_GRACE), as a Kafka Streams window closes: the stream time of a partition
is the timestamp of the last record the intake has committed (or, for a partition read up to its
end, the wall clock: nothing older can still be waiting in it), and the topic's is the lowest of
its partitions'. A record of D found after that is late (streams/upstream_ends.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

DAY_MS = 86_400_000


def day_of(timestamp_ms: int) -> str:
    """The UTC day of a Kafka timestamp, as YYYY-MM-DD."""
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC).date().isoformat()


def day_end_ms(day: str) -> int:
    """The first millisecond after `day` (UTC)."""
    start = datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC)
    return int(start.timestamp() * 1000) + DAY_MS


def is_over(day: str, now_ms: int, grace_ms: int) -> bool:
    """The day and its grace period have passed on the wall clock."""
    return day_end_ms(day) + grace_ms <= now_ms


def stream_time(reached_ms: Iterable[int | None]) -> int | None:
    """The lowest of the partitions' stream times; None when one has none (nothing read)."""
    lowest: int | None = None
    for reached in reached_ms:
        if reached is None:
            return None
        lowest = reached if lowest is None else min(lowest, reached)
    return lowest


def last_day_over(stream_ms: int | None, grace_ms: int) -> str | None:
    """The latest day D whose end plus the grace period the stream time has reached (every
    earlier day is over too); None when there is no stream time."""
    if stream_ms is None:
        return None
    first_open = date.fromisoformat(day_of(stream_ms - grace_ms))
    return (first_open - timedelta(days=1)).isoformat()
