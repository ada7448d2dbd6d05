"""Retention and DELETE: a finished job's results, ledger rows and registry row go (on expiry or
on request); the rows it imported stay; running jobs are never touched."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text

from tests.support.users_data import generate
from tests.support.workers import Stack, Worker, http

SLOW = {"SLUICE_WRITERS": "1", "SLUICE_BATCH_CHUNKS": "1"}


def _instant(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def _kept(db: Engine, job_id: str) -> dict[str, int]:
    """What Sluice keeps about a job, and the users rows it imported."""
    with db.connect() as connection:
        return {
            name: int(connection.execute(text(query), {"j": job_id}).scalar_one())
            for name, query in {
                "results": "SELECT count(*) FROM sluice_results WHERE job_id = :j",
                "chunks": "SELECT count(*) FROM sluice_chunks WHERE job_id = :j",
                "jobs": "SELECT count(*) FROM sluice_jobs WHERE id = :j",
                "users": "SELECT count(*) FROM users WHERE batch_job_id = :j",
            }.items()
        }


def _emails(db: Engine, job_id: str) -> set[str]:
    with db.connect() as connection:
        return set(
            connection.scalars(
                text("SELECT email FROM users WHERE batch_job_id = :j"), {"j": job_id}
            )
        )


def _registry_expiry(db: Engine, job_id: str) -> tuple[str | None, datetime | None]:
    with db.connect() as connection:
        row = connection.execute(
            text("SELECT status, expires_at FROM sluice_jobs WHERE id = :j"), {"j": job_id}
        ).one()
    return row.status, row.expires_at


def _view(worker: Worker, job_id: str) -> tuple[int, Any]:
    return http("GET", f"{worker.url}/api/batch/jobs/{job_id}", timeout=10)


@contextmanager
def _writes_blocked(db: Engine) -> Iterator[None]:
    """Hold a lock that lets readers in but makes every insert into users wait: a job that has
    started stays active (its next chunk waits in the writer) until the block ends."""
    with db.connect() as connection:
        transaction = connection.begin()
        try:
            connection.execute(text("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE"))
            yield
        finally:
            transaction.rollback()


def _until_removed(
    db: Engine, worker: Worker, job_id: str, view: dict[str, Any], stays: list[str]
) -> float:
    """Poll a finished job until retention removes it (GET → 404, registry row gone), checking
    it is never gone before its expiresAt and that the jobs in `stays` stay meanwhile. Answers
    how many seconds after completedAt it was found gone."""
    completed_at, expires_at = _instant(view["completedAt"]), _instant(view["expiresAt"])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        now = datetime.now(UTC)
        code, answer = _view(worker, job_id)
        if code == 404:
            assert now >= expires_at, (now, expires_at)  # never before it expired
            assert _kept(db, job_id)["jobs"] == 0
            return (now - completed_at).total_seconds()
        assert code == 200, answer
        for other in stays:
            code, answer = _view(worker, other)
            assert code == 200, (other, answer)
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} not removed by retention within 20 s of finishing")


def _small_csv(prefix: str, n: int, bad_rows: tuple[int, ...] = ()) -> bytes:
    lines = ["email,name,age"]
    for i in range(1, n + 1):
        age = "abc" if i in bad_rows else "30"
        lines.append(f"{prefix}{i}@example.com,{prefix} {i},{age}")
    return ("\r\n".join(lines) + "\r\n").encode()


def test_retention_removes_expired_jobs_only(stack: Stack, db: Engine) -> None:
    worker = stack.worker(
        None,
        SLUICE_RETAIN_COMPLETED_SECONDS="2",
        SLUICE_RETAIN_FAILED_SECONDS="3600",
        SLUICE_RETENTION_INTERVAL="1",
        **SLOW,
    ).wait_ready()
    big_upload = generate(50_000, seed=41, existing=0).csv_bytes()

    # a job that fails: stopOnError and an invalid record
    failed_job = stack.submit_csv(
        worker, _small_csv("f", 1000, bad_rows=(3,)), chunkSize="100", stopOnError="true"
    )["jobId"]
    failed_view = stack.wait_finished(worker, failed_job)
    assert failed_view["status"] == "failed", failed_view
    failed_expiry = _instant(failed_view["expiresAt"])
    assert failed_expiry - _instant(failed_view["completedAt"]) == timedelta(hours=1)
    assert _registry_expiry(db, failed_job) == ("failed", failed_expiry)
    failed_kept = _kept(db, failed_job)
    assert failed_kept["results"] == 1000 and failed_kept["jobs"] == 1, failed_kept
    assert failed_kept["chunks"] == failed_view["progress"]["totalChunks"] >= 10, failed_kept
    assert failed_kept["users"] == failed_view["progress"]["successful"] > 0

    # a job that completes, with every kind of outcome
    body = _small_csv("c", 500, bad_rows=(7, 300)) + b"C1@Example.com,Again,40\r\n"
    done_job = stack.submit_csv(worker, body, chunkSize="100", skipDuplicates="true")["jobId"]
    done_view = stack.wait_finished(worker, done_job)
    done_kept = _kept(db, done_job)  # right away: it expires 2 s after it completed
    done_emails = _emails(db, done_job)
    assert done_view["status"] == "completed", done_view
    progress = done_view["progress"]
    assert (progress["successful"], progress["failed"], progress["skipped"]) == (498, 2, 1)
    done_expiry = _instant(done_view["expiresAt"])
    assert done_expiry - _instant(done_view["completedAt"]) == timedelta(seconds=2)
    assert done_view["resultsUrl"] == f"/api/batch/jobs/{done_job}/results"
    assert done_kept["results"] == 501 and done_kept["jobs"] == 1, done_kept
    assert done_kept["chunks"] == progress["totalChunks"] >= 6, done_kept
    assert done_kept["users"] == len(done_emails) == 498

    gone_after = _until_removed(db, worker, done_job, done_view, stays=[failed_job])
    print(f"\ncompleted job removed {gone_after:.2f}s after it completed (expiry 2 s, pass 1 s)")
    assert gone_after <= 15
    # nothing of it left, except the users it imported
    assert _kept(db, done_job) == {"results": 0, "chunks": 0, "jobs": 0, "users": 498}
    assert _emails(db, done_job) == done_emails
    for path in ("", "/results", "/results.csv", "/errors"):
        code, _ = http("GET", f"{worker.url}/api/batch/jobs/{done_job}{path}")
        assert code == 404, path

    # a job still running lives through retention passes: it has no expiry. Its writes wait
    # behind a lock taken before it is submitted, so it cannot finish however fast the machine
    with _writes_blocked(db):
        running_job = stack.submit_csv(worker, big_upload, chunkSize="100")["jobId"]
        watch_until = time.monotonic() + 6  # six passes of the retention timer
        while time.monotonic() < watch_until:
            code, view = _view(worker, running_job)
            assert code == 200 and view["status"] in ("queued", "active"), view
            assert view["expiresAt"] is None
            assert _kept(db, running_job)["jobs"] == 1
            code, view = _view(worker, failed_job)
            assert code == 200 and view["status"] == "failed", view
            time.sleep(0.25)
        assert _registry_expiry(db, running_job) in (("queued", None), ("active", None))
        code, listing = http("GET", f"{worker.url}/api/batch/jobs?limit=10")
        assert [i["jobId"] for i in listing["items"]] == [running_job, failed_job]
        code, _ = http("POST", f"{worker.url}/api/batch/jobs/{running_job}/cancel")
        assert code == 202

    # cancelled counts as finished: it expires 2 s after it ends, like a completed job
    ended = stack.wait_finished(worker, running_job)
    assert ended["status"] == "cancelled", ended
    assert _instant(ended["expiresAt"]) - _instant(ended["completedAt"]) == timedelta(seconds=2)
    users = ended["progress"]["successful"]
    assert users < 50_000  # the chunks the writers held when the lock went may still apply
    gone_after = _until_removed(db, worker, running_job, ended, stays=[failed_job])
    print(f"cancelled job removed {gone_after:.2f}s after it ended")
    assert _kept(db, running_job) == {"results": 0, "chunks": 0, "jobs": 0, "users": users}

    # the failed job: all of it still there, to be removed in an hour
    assert _kept(db, failed_job) == failed_kept
    assert _registry_expiry(db, failed_job) == ("failed", failed_expiry)
    code, listing = http("GET", f"{worker.url}/api/batch/jobs")
    assert [i["jobId"] for i in listing["items"]] == [failed_job]
    assert _instant(listing["items"][0]["expiresAt"]) == failed_expiry


def _delete(worker: Worker, job_id: str) -> tuple[int, Any]:
    return http("DELETE", f"{worker.url}/api/batch/jobs/{job_id}")


def test_delete_job(stack: Stack, db: Engine) -> None:
    worker = stack.worker(None, **SLOW).wait_ready()

    small = stack.submit_csv(
        worker, _small_csv("s", 300, bad_rows=(5,)), chunkSize="100", skipDuplicates="true"
    )["jobId"]
    small_view = stack.wait_finished(worker, small)
    assert small_view["status"] == "completed"
    small_kept = _kept(db, small)
    assert small_kept["results"] == 300 and small_kept["users"] == 299, small_kept
    assert small_kept["chunks"] == small_view["progress"]["totalChunks"] >= 3, small_kept

    # its writes wait behind a lock taken before it is submitted: it cannot finish meanwhile
    with _writes_blocked(db):
        big = stack.submit_csv(
            worker, generate(50_000, seed=43, existing=0).csv_bytes(), chunkSize="100"
        )["jobId"]
        code, answer = _delete(worker, big)  # queued or active: not finished either way
        assert code == 409, answer
        assert answer["error"]["message"] in (
            f"job {big} is queued: cancel it first",
            f"job {big} is active: cancel it first",
        )
        assert _kept(db, big)["jobs"] == 1
        code, _ = http("POST", f"{worker.url}/api/batch/jobs/{big}/cancel")
        assert code == 202
        code, answer = _delete(worker, big)  # cancelling is not finished either
        assert code == 409, answer
    big_view = stack.wait_finished(worker, big)
    assert big_view["status"] == "cancelled"
    big_kept = _kept(db, big)
    big_emails = _emails(db, big)
    assert big_kept["results"] == 50_000 and big_kept["jobs"] == 1, big_kept
    assert big_kept["chunks"] == big_view["progress"]["totalChunks"] >= 500, big_kept
    assert big_kept["users"] == big_view["progress"]["successful"] == len(big_emails)

    code, body = _delete(worker, big)
    assert code == 204, body
    assert body == b""
    assert _kept(db, big) == {"results": 0, "chunks": 0, "jobs": 0, "users": big_kept["users"]}
    assert _emails(db, big) == big_emails
    for path in ("", "/results", "/results.csv", "/errors"):
        code, _ = http("GET", f"{worker.url}/api/batch/jobs/{big}{path}")
        assert code == 404, path
    code, _ = _delete(worker, big)
    assert code == 404
    assert _kept(db, small) == small_kept  # another job's rows are untouched

    code, _ = _delete(worker, small)  # a job that completed
    assert code == 204
    assert _kept(db, small) == {"results": 0, "chunks": 0, "jobs": 0, "users": 299}
    code, listing = http("GET", f"{worker.url}/api/batch/jobs")
    assert listing["items"] == []

    code, answer = _delete(worker, "no-such-job")
    assert code == 404, answer
