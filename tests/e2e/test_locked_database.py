"""A SQLite file another program holds locked (BEGIN EXCLUSIVE) when a job is submitted: a 503
with Retry-After, long before SQLite's own 30 s busy wait would have ended, and nothing of the
job anywhere (no registry row, nothing announced on Kafka). Once the lock is gone the same
upload is accepted and completes, and it is the only job the progress topic ever heard of."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from contextlib import closing
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from streams.sink.database import SQLITE_BUSY_MS
from streams.topics import progress_topic
from tests.support.workers import Stack, http

UPLOAD = b"email,name\nlocked-1@example.com,One\nlocked-2@example.com,Two\n"
SUBMIT_TIMEOUT = 4  # s; the registry row may wait half of it for the lock


def test_a_locked_sqlite_file_is_a_503_that_leaves_nothing_behind(
    stack: Stack, tmp_path: Path
) -> None:
    database = tmp_path / "locked.db"
    worker = stack.worker(
        None, DATABASE_URL=f"sqlite:///{database}", SLUICE_SUBMIT_TIMEOUT=str(SUBMIT_TIMEOUT)
    ).wait_ready()
    url = f"{worker.url}/api/batch/jobs?type=user-import"

    holder = sqlite3.connect(database, isolation_level=None, timeout=30)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        # the client gives up before SQLite's busy wait would end: the old path timed out here
        status, answer = http(
            "POST", url, UPLOAD, {"Content-Type": "text/csv"}, timeout=SQLITE_BUSY_MS / 1000 - 5
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert status == 503, answer
    assert answer["_headers"]["Retry-After"] == "5"
    assert answer["error"]["code"] == "unavailable"
    assert "locked or away" in answer["error"]["message"], answer
    assert _registered(database) == []

    accepted = stack.submit_csv(worker, UPLOAD)
    view = stack.wait_finished(worker, accepted["jobId"])
    assert view["status"] == "completed" and view["progress"]["successful"] == 2, view
    assert _registered(database) == [accepted["jobId"]]
    heard_of = asyncio.run(_jobs_announced(stack, accepted["jobId"]))
    assert heard_of == {accepted["jobId"]}


def _registered(database: Path) -> list[str]:
    with closing(sqlite3.connect(database)) as connection:
        return [row[0] for row in connection.execute("SELECT id FROM sluice_jobs")]


async def _jobs_announced(stack: Stack, finished_job: str) -> set[str]:
    """The job ids (JSON keys) of every event on the progress topic: read from the start until the
    finished job's events have been seen and a fetch of every partition brings nothing new."""
    consumer = AIOKafkaConsumer(
        progress_topic(stack.app_id),
        bootstrap_servers=stack.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    keys: set[str] = set()
    try:
        for _ in range(120):
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                keys.update(json.loads(record.key) for record in records if record.key)
            if not batches and finished_job in keys:
                return keys
        raise AssertionError(f"the progress topic did not settle: {sorted(keys)}")
    finally:
        await consumer.stop()
