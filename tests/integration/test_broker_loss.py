"""The start-up check of streams/worker/broker_loss.py against real brokers (a dev broker of the
test's own, started again to lose its data) and both databases: a broker that kept what it held
fails no job; one that lost it fails the unfinished jobs from the ledger, once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import Engine, select, text

from streams import topics
from streams.config import Settings
from streams.devbroker import start_dev_broker
from streams.kafka import marks
from streams.kept import LOST_REASON
from streams.sink import lost
from streams.sink.database import make_engine
from streams.sink.tables import broker_marks, chunks, jobs, results
from streams.worker.broker_loss import check, declare_loss
from tests.support.schemas import app_id

HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)


@pytest.fixture
def engine(any_database_url: str) -> Iterator[Engine]:
    made = make_engine(any_database_url)
    yield made
    made.dispose()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Any]:
    started = start_dev_broker(log_path=tmp_path / "own-broker.log")
    yield started
    started.stop()


def _settings(servers: str, app: str) -> Settings:
    return Settings(bootstrap_servers=servers, app_id=app, retain_failed_seconds=86400)


def _job(engine: Engine, job_id: str, created: datetime = HOUR_AGO, **values: Any) -> None:
    row = {"tenant": "default", "type": "user-import", "options": "{}", "created_at": created}
    with engine.begin() as connection:
        connection.execute(jobs.insert().values(id=job_id, **{**row, **values}))


def _ledger(engine: Engine, job_id: str, index: int, records: int, failed: int = 0) -> None:
    counts = {"records": records, "successful": records - failed, "failed": failed}
    with engine.begin() as connection:
        connection.execute(
            chunks.insert().values(
                job_id=job_id,
                chunk_index=index,
                partition=index % 4,
                partition_seq=index // 4,
                skipped=0,
                created=records - failed,
                updated=0,
                errors="[]",
                **counts,
            )
        )


def _results(engine: Engine, job_id: str, rows: range, dead_chunk: int | None = None) -> None:
    values = [
        {"job_id": job_id, "row_no": row, "outcome": "failed", "reason": "boom"}
        | ({"dead_chunk": dead_chunk} if dead_chunk is not None else {"field": "email"})
        for row in rows
    ]
    with engine.begin() as connection:
        connection.execute(results.insert(), values)


def _remembered(engine: Engine, app: str) -> str | None:
    return lost.remembered_mark(engine, app)


def _on_broker(servers: str, app: str) -> marks.BrokerLook:
    return asyncio.run(marks.look(servers, topics.progress_topic(app), topics.mark_topic(app)))


def _announce(servers: str, app: str) -> None:
    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(topics.progress_topic(app), b"x", key=b'"job"')
        finally:
            await producer.stop()

    asyncio.run(send())


def test_a_first_start_writes_the_mark_and_a_broker_that_kept_it_fails_no_job(
    engine: Engine, kafka_bootstrap: str
) -> None:
    app = app_id()
    settings = _settings(kafka_bootstrap, app)
    check(settings, engine)
    mark = _remembered(engine, app)
    assert mark is not None and _on_broker(kafka_bootstrap, app).marks == {mark}

    # a topic job registered, not announced yet: the progress topic is still empty
    _job(engine, "waiting")
    check(settings, engine)
    row, _ = _kept(engine, "waiting")
    assert (row.status, row.error, row.kept_state) == (None, None, None)
    assert _remembered(engine, app) == mark


def test_a_broker_holding_the_apps_progress_lost_nothing_even_without_the_mark(
    engine: Engine, kafka_bootstrap: str
) -> None:
    app = app_id()
    settings = _settings(kafka_bootstrap, app)
    with engine.begin() as connection:  # remembered, but never put on this broker
        lost.replace_mark(connection, app, None, "mark-the-broker-never-saw", lost=False)
    _announce(kafka_bootstrap, app)
    _job(engine, "running", status="active")

    check(settings, engine)

    row, _ = _kept(engine, "running")
    assert (row.status, row.error) == ("active", None)
    # the remembered mark is put back on the broker
    assert "mark-the-broker-never-saw" in _on_broker(kafka_bootstrap, app).marks


def _kept(engine: Engine, job_id: str) -> tuple[Any, dict[str, Any]]:
    with engine.connect() as connection:
        row = connection.execute(select(jobs).where(jobs.c.id == job_id)).one()
    return row, json.loads(row.kept_state) if row.kept_state else {}


def test_a_broker_that_lost_its_data_fails_unfinished_jobs_with_what_the_ledger_says(
    engine: Engine, broker: Any, tmp_path: Path
) -> None:
    app = app_id()
    check(_settings(broker.bootstrap_servers, app), engine)
    first_mark = _remembered(engine, app)

    kept = {"chunksDone": 2, "records": 20, "deadLetters": {"1:0": {}}, "acceptedAt": 1}
    _job(engine, "done", status="completed", kept_state=json.dumps(kept))
    _job(engine, "old-done", status="completed", completed_at=HOUR_AGO, total_chunks=1)
    _ledger(engine, "old-done", 0, 10)
    _job(engine, "running", status="active", total_records=40, total_chunks=4)
    _ledger(engine, "running", 0, 10, failed=2)
    _ledger(engine, "running", 1, 10)
    _results(engine, "running", range(1, 3))  # the two failed records of chunk 0
    _results(engine, "running", range(21, 31), dead_chunk=2)  # a dead-lettered chunk
    later = datetime.now(UTC) + timedelta(hours=1)  # registered after the check began
    _job(engine, "newer", created=later, status="active")

    broker.stop()
    again = start_dev_broker(log_path=tmp_path / "own-broker-2.log")
    try:
        check(_settings(again.bootstrap_servers, app), engine)
        new_mark = _remembered(engine, app)
        assert new_mark not in (None, first_mark)
        assert _on_broker(again.bootstrap_servers, app).marks == {new_mark}
    finally:
        again.stop()

    row, state = _kept(engine, "running")
    assert (row.status, row.error, row.dead_letters_lost) == ("failed", LOST_REASON, 1)
    assert row.expires_at is not None and row.completed_at is not None
    assert {k: state[k] for k in ("chunksDone", "records", "successful", "failed")} == {
        "chunksDone": 3,
        "records": 30,
        "successful": 18,
        "failed": 12,
    }
    assert (state["deadLettered"], len(state["deadLetters"]), state["error"]) == (
        10,
        1,
        LOST_REASON,
    )
    assert [e["row"] for e in state["errors"]] == [1, 2, 21, 22, 23, 24, 25, 26, 27, 28]

    row, state = _kept(engine, "old-done")  # finished before states were kept: from the ledger
    assert (row.status, row.error, state["records"], state["chunksDone"]) == (
        "completed",
        None,
        10,
        1,
    )
    row, state = _kept(engine, "done")
    assert (row.status, row.dead_letters_lost, state) == ("completed", 1, kept)
    row, state = _kept(engine, "newer")
    assert (row.status, row.error, state) == ("active", None, {})


def test_workers_starting_together_declare_a_loss_once(engine: Engine) -> None:
    app = app_id()
    settings = _settings("unused:9092", app)
    began = datetime.now(UTC)
    _job(engine, "running", status="active")
    assert declare_loss(engine, settings, None, "mark-a", began) == (1, 0)
    assert declare_loss(engine, settings, None, "mark-b", began) is None
    with engine.connect() as connection:
        assert connection.execute(select(broker_marks.c.mark)).scalars().all() == ["mark-a"]
        failed = connection.execute(
            text("SELECT count(*) FROM sluice_jobs WHERE status = 'failed'")
        )
        assert failed.scalar_one() == 1
