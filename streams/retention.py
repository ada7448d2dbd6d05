"""Retention: when a finished job expires, and removing what expired.

A job expires `SLUICE_RETAIN_COMPLETED_SECONDS` after it completed (or was cancelled) and
`SLUICE_RETAIN_FAILED_SECONDS` after it failed. The progress agent records each job's status and
expiry in the job registry as they change; a timer on every worker removes expired jobs (their
results, ledger rows and registry row; never the rows they imported), whether or not new jobs
arrive. Removing is idempotent, so workers racing for the same job do no harm.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete

from streams.config import Settings
from streams.exports import remove_expired_exports, remove_job_exports
from streams.sink import jobs as job_registry
from streams.sink import removed_batches, results
from streams.sink.tables import chunks, dead_letter_replays
from streams.wire.events import job_removed

log = logging.getLogger(__name__)


def expires_at(settings: Settings, status: str, completed_at: datetime | None) -> datetime | None:
    if completed_at is None:
        return None
    if status == "failed":
        return completed_at + timedelta(seconds=settings.retain_failed_seconds)
    if status in ("completed", "cancelled"):
        return completed_at + timedelta(seconds=settings.retain_completed_seconds)
    return None


def remove_job(engine: Engine, job_id: str) -> None:
    """Everything Sluice keeps about a job in the database and in files, in one transaction;
    imported rows stay, and an upstream batch's id (streams/sink/removed_batches.py). (Its
    progress state goes with `announce_removed`.)"""
    remove_job_exports(job_id)
    with engine.begin() as connection:
        results.remove_job(connection, job_id)
        connection.execute(delete(chunks).where(chunks.c.job_id == job_id))
        connection.execute(
            delete(dead_letter_replays).where(dead_letter_replays.c.job_id == job_id)
        )
        removed_batches.remember_removed(connection, job_id)
        job_registry.remove_job(connection, job_id)


def remove_expired(engine: Engine, settings: Settings, now: datetime) -> list[str]:
    """Remove every job expired at `now`, and export files whose download link expired; the
    ids of the jobs removed."""
    remove_expired_exports(now, settings)
    removed: list[str] = []
    failed_before = now - timedelta(seconds=settings.retain_failed_seconds)
    while True:
        batch = job_registry.expired_jobs(engine, now, failed_before)
        if not batch:
            return removed
        for job_id in batch:
            remove_job(engine, job_id)
            removed.append(job_id)
        log.info("retention removed %d expired job(s)", len(batch))


async def announce_removed(progress_topic: Any, job_ids: Iterable[str], reason: str) -> None:
    """Tell the progress agent (on the worker owning each job) to drop the jobs' state."""
    for job_id in job_ids:
        delivery = await progress_topic.send(key=job_id, value=job_removed(job_id, reason))
        await delivery
