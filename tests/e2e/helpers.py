"""Assertions shared by the end-to-end tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text

from tests.support.users_data import Expected, Upload, stored_tuple


def seed_existing(db: Engine, upload: Upload) -> None:
    with db.begin() as connection:
        for values in upload.existing.values():
            connection.execute(
                text(
                    "INSERT INTO users (email, name, country, age) "
                    "VALUES (:email, :name, :country, :age)"
                ),
                values,
            )


def users_table(db: Engine) -> dict[str, tuple[Any, ...]]:
    with db.connect() as connection:
        rows = connection.execute(
            text("SELECT email, name, country, age, signup_ts FROM users")
        ).all()
    table = {}
    for email, name, country, age, ts in rows:
        values = {
            "email": email,
            "name": name,
            "country": country,
            "age": age,
            "signup_ts": ts.isoformat() if ts else None,
        }
        table[email] = stored_tuple(values)
    assert len(table) == len(rows), "duplicate emails in users"
    return table


def assert_job_matches(view: dict[str, Any], want: Expected, total: int) -> None:
    progress = view["progress"]
    assert view["status"] == "completed", view
    got = {k: progress[k] for k in ("processed", "total", "successful", "failed", "skipped")}
    assert got == {
        "processed": total,
        "total": total,
        "successful": want.successful,
        "failed": want.failed,
        "skipped": want.skipped,
    }, view
    assert progress["successful"] + progress["failed"] + progress["skipped"] == total
    assert progress["currentChunk"] == progress["totalChunks"]
    assert progress["percentage"] == 100.0
    assert (view["summary"]["created"], view["summary"]["updated"]) == (want.created, want.updated)
    assert view["summary"]["updated"] == want.updated


def assert_table_matches(db: Engine, want: Expected) -> None:
    got = users_table(db)
    missing = want.table.keys() - got.keys()
    extra = got.keys() - want.table.keys()
    assert not missing and not extra, (sorted(missing)[:5], sorted(extra)[:5])
    wrong = [(k, got[k], v) for k, v in want.table.items() if got[k] != v]
    assert not wrong, wrong[:5]
