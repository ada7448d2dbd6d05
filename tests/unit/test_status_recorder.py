"""The registry's status rows follow the progress table without holding up the agent: an event
is done once its job's row says what the state says, and a database that is away is waited out."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import psycopg2
import pytest
from aiokafka import TopicPartition

from streams import retry
from streams.agents import status
from streams.agents.status import StatusRecorder
from streams.config import load_settings
from streams.kafka.commit_guard import CommitGuard
from streams.progress import new_state

TP = TopicPartition("app.progress", 0)


class Message:
    def __init__(self, offset: int):
        self.tp, self.offset = TP, offset


def state(records: int | None = None) -> dict[str, Any]:
    s = new_state("job")
    s.update(type="user-import", totalRecords=records, totalChunks=1 if records else None)
    return s


@pytest.fixture
def rows(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """The registry writes made; the first three meet a database that is away."""
    written: list[tuple[Any, ...]] = []
    failures = [psycopg2.OperationalError("connection refused")] * 3

    def record_status(engine: Any, job_id: str, *values: Any) -> None:
        if failures:
            raise failures.pop()
        written.append((job_id, values[0], values[3]))

    monkeypatch.setattr(status.job_registry, "record_status", record_status)
    monkeypatch.setattr(retry, "BACKOFF", lambda state: 0)
    return written


def test_events_are_done_once_the_registry_says_what_the_state_says(
    rows: list[tuple[Any, ...]],
) -> None:
    async def scenario() -> None:
        guard = CommitGuard({TP.topic})
        runtime = SimpleNamespace(commit_guard=guard, settings=load_settings(), engine=None)
        recorder = StatusRecorder(runtime)  # type: ignore[arg-type]
        task = asyncio.ensure_future(recorder.run())
        for offset in range(3):
            guard.begin(TP, offset)
        recorder.folded("job", state(), Message(0))
        recorder.folded("job", state(10), Message(1))  # totals known: a newer row
        await asyncio.sleep(0)
        assert guard.watermark(TP, 0) == 0  # nothing done while the database is away
        for _ in range(100):
            if guard.watermark(TP, 0) == 2:
                break
            await asyncio.sleep(0.01)
        assert rows == [("job", "queued", (10, 1))]  # one write, of the latest row
        recorder.folded("job", state(10), Message(2))  # the row says so already
        assert guard.watermark(TP, 0) == 3
        task.cancel()

    asyncio.run(scenario())
