"""The intake's memory of open jobs (streams/intake/batches.py): standing jobs of days over are
forgotten once idle, so that a late record opens its job again."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest

from streams.intake.batches import FORGET_AFTER_SECONDS, Batches, OpenJob
from streams.intake.days import day_of
from streams.jobtypes import JOB_TYPES

pytestmark = pytest.mark.unit


def job(job_id: str, day: str | None, idle: float, batch: str | None = None) -> OpenJob:
    return OpenJob(
        job_id, "acme", JOB_TYPES["user-import"], batch, {}, day, time.monotonic() - idle
    )


def test_only_idle_standing_jobs_of_days_over_and_not_busy_are_forgotten() -> None:
    runtime: Any = SimpleNamespace(settings=SimpleNamespace(batch_wait=10.0))
    batches = Batches(runtime)
    today = day_of(int(time.time() * 1000))
    idle = FORGET_AFTER_SECONDS + 1
    kept = [
        job("today", today, idle),  # its day is not over
        job("recent", "2020-01-01", 0.0),  # took a record just now
        job("busy", "2020-01-01", idle),  # its records wait to be sent
        job("batch", None, idle, batch="b-1"),  # a batch's job
    ]
    for open_job in [*kept, job("old", "2020-01-01", idle)]:
        batches.open[open_job.job_id] = open_job
    assert batches.forget_days_over({"busy"}) == ["old"]
    assert sorted(batches.open) == sorted(j.job_id for j in kept)
