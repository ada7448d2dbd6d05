"""How far a partition is from its end: what the idle check and the queue-depth gauge read."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition

from streams.kafka.consumer import Backlog

TP = TopicPartition("app.chunks", 3)


@pytest.mark.parametrize(
    ("committed", "highwater", "waiting", "drained"),
    [
        (None, None, 0, False),  # nothing fetched yet: not known to be drained
        (None, 0, 0, True),  # an empty partition
        (None, 5, 5, False),  # nothing committed yet
        (3, 5, 2, False),
        (5, 5, 0, True),
        (6, 5, 0, True),  # a fresher commit than the last fetch
    ],
)
def test_backlog(committed: int | None, highwater: int | None, waiting: int, drained: bool) -> None:
    backlog = Backlog(TP, committed, highwater)
    assert (backlog.waiting, backlog.drained) == (waiting, drained)
    assert str(backlog) == f"app.chunks[3] committed={committed} end={highwater}"
