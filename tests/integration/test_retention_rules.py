"""Which jobs retention removes, against real PostgreSQL (no broker needed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text

from streams.config import Settings
from streams.retention import expires_at, remove_expired
from streams.sink.tables import create_tables, jobs

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SETTINGS = Settings(retain_completed_seconds=7 * 86400, retain_failed_seconds=30 * 86400)


def _job(db: Engine, job_id: str, *, created: datetime, **values: object) -> None:
    with db.begin() as connection:
        connection.execute(
            jobs.insert().values(
                id=job_id,
                tenant="default",
                type="user-import",
                options=json.dumps({}),
                created_at=created,
                **values,
            )
        )


def _left(db: Engine) -> set[str]:
    with db.connect() as connection:
        return set(connection.scalars(text("SELECT id FROM sluice_jobs")))


def test_expiry_follows_the_status() -> None:
    done = NOW - timedelta(hours=1)
    assert expires_at(SETTINGS, "completed", done) == done + timedelta(days=7)
    assert expires_at(SETTINGS, "cancelled", done) == done + timedelta(days=7)
    assert expires_at(SETTINGS, "failed", done) == done + timedelta(days=30)
    assert expires_at(SETTINGS, "active", done) is None
    assert expires_at(SETTINGS, "completed", None) is None


def test_retention_removes_expired_and_broken_off_jobs_only(db: Engine) -> None:
    create_tables(db)
    old = NOW - timedelta(days=40)
    _job(db, "expired", created=old, status="completed", expires_at=NOW - timedelta(seconds=1))
    _job(db, "not-yet", created=old, status="failed", expires_at=NOW + timedelta(days=1))
    _job(db, "running", created=old, status="active")
    # an upload that broke off: an error and no status ever recorded
    _job(db, "broke-off-long-ago", created=old, error="upload interrupted: OSError")
    _job(db, "broke-off-today", created=NOW - timedelta(hours=1), error="upload interrupted")

    removed = remove_expired(db, SETTINGS, NOW)

    assert sorted(removed) == ["broke-off-long-ago", "expired"]
    assert _left(db) == {"not-yet", "running", "broke-off-today"}
    assert remove_expired(db, SETTINGS, NOW) == []  # idempotent
