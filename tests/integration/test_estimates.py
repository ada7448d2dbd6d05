"""`estimatedTime` is measured from the job registry, on PostgreSQL and on SQLite: the median
rate of the last completed API jobs of the type (at least 1,000 records), read at most once a
refresh, and the fallback rate when there are none or the registry cannot be read."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, create_engine, update

from streams import estimates
from streams.estimates import FALLBACK_RECORDS_PER_SECOND, REFRESH_SECONDS, RateBook
from streams.sink import jobs as job_registry
from streams.sink.database import make_engine
from streams.sink.durations import recent_durations
from streams.sink.tables import create_tables, jobs

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def engine(any_database_url: str) -> Iterator[Engine]:
    engine = make_engine(any_database_url, pool_size=2)
    create_tables(engine)
    yield engine
    engine.dispose()


def finished_job(
    engine: Engine,
    records: int,
    seconds: float,
    *,
    job_type: str = "user-import",
    status: str = "completed",
    origin: str = "api",
    ended: datetime = START,
) -> str:
    """A job of `records` that took `seconds` from its registration to its completion."""
    job_id = str(uuid.uuid4())
    job_registry.insert_job(engine, job_id, "acme", job_type, {}, origin)
    job_registry.record_split(engine, job_id, records, max(1, records // 1000))
    job_registry.record_status(engine, job_id, status, ended, ended + timedelta(days=7))
    with engine.begin() as connection:
        created = ended - timedelta(seconds=seconds)
        connection.execute(update(jobs).where(jobs.c.id == job_id).values(created_at=created))
    return job_id


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_recent_durations_are_the_last_completed_api_jobs_of_the_type(engine: Engine) -> None:
    for n in range(5):  # ended one minute apart, the last one newest
        finished_job(engine, 10_000 * (n + 1), 10, ended=START + timedelta(minutes=n))
    finished_job(engine, 500, 1)  # too small to say anything about the rate
    finished_job(engine, 50_000, 1, status="failed")
    finished_job(engine, 50_000, 1, origin="topic")  # a producer's pace
    finished_job(engine, 50_000, 1, job_type="user-export")
    durations = recent_durations(engine, "user-import", limit=3, min_records=1_000)
    assert durations == [(50_000, 10.0), (40_000, 10.0), (30_000, 10.0)]


def test_the_rate_is_the_median_of_recent_jobs_read_once_a_refresh(engine: Engine) -> None:
    clock = Clock()
    book = RateBook(clock)
    assert asyncio.run(book.rate(engine, "user-import")) == FALLBACK_RECORDS_PER_SECOND
    finished_job(engine, 20_000, 10)  # 2,000 records/s
    finished_job(engine, 30_000, 10)  # 3,000
    finished_job(engine, 10_000, 1_000)  # 10/s: a job reopened by a replay much later
    # the fallback stands until the refresh is due
    assert asyncio.run(book.rate(engine, "user-import")) == FALLBACK_RECORDS_PER_SECOND
    clock.now += REFRESH_SECONDS
    assert asyncio.run(book.rate(engine, "user-import")) == 2_000.0
    assert asyncio.run(book.rate(engine, "user-export")) == FALLBACK_RECORDS_PER_SECOND


def test_a_registry_that_cannot_be_read_keeps_the_last_rate(engine: Engine) -> None:
    clock = Clock()
    book = RateBook(clock)
    finished_job(engine, 40_000, 10)
    assert asyncio.run(book.rate(engine, "user-import")) == 4_000.0
    gone = create_engine("sqlite:////nonexistent-folder/sluice.db")  # refuses every connection
    clock.now += REFRESH_SECONDS
    assert asyncio.run(book.rate(gone, "user-import")) == 4_000.0
    assert asyncio.run(RateBook(clock).rate(gone, "user-import")) == FALLBACK_RECORDS_PER_SECOND


def test_the_estimate_counts_what_the_upload_already_took() -> None:
    assert estimates.estimate_seconds(200_000, 8_000.0) == 25
    assert estimates.estimate_seconds(200_000, 8_000.0, elapsed=17.2) == 8
    assert estimates.estimate_seconds(200_000, 8_000.0, elapsed=40) == 1  # never below 1 s
    assert estimates.estimate_seconds(0, 8_000.0) == 1
