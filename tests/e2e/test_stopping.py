"""Cancellation and stopOnError: every worker skips what is left, and the counts still add up."""

from __future__ import annotations

import time

from sqlalchemy import Engine, text

from tests.support.users_data import generate
from tests.support.workers import Stack, http

SLOW = {"SLUICE_WRITERS": "1", "SLUICE_BATCH_CHUNKS": "1"}


def _users(db: Engine) -> int:
    with db.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM users")).scalar_one())


def test_cancel_skips_the_rest_and_ends_cancelled(stack: Stack, db: Engine) -> None:
    worker = stack.worker(None, **SLOW).wait_ready()
    upload = generate(50_000, seed=41, existing=0)
    accepted = stack.submit_csv(worker, upload.csv_bytes(), chunkSize="100")
    job = accepted["jobId"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _, view = http("GET", f"{worker.url}/api/batch/jobs/{job}")
        if view["progress"]["processed"] > 0:
            break
        time.sleep(0.05)

    status, answer = http("POST", f"{worker.url}/api/batch/jobs/{job}/cancel")
    assert status == 202, answer
    assert answer["status"] == "cancelling"
    again, _ = http("POST", f"{worker.url}/api/batch/jobs/{job}/cancel")
    assert again == 202  # idempotent while it is being cancelled
    # what the cancel answered is a status the job has, in its status and in the listing
    _, meanwhile = http("GET", f"{worker.url}/api/batch/jobs/{job}")
    assert meanwhile["status"] == "cancelling", meanwhile
    _, listed = http("GET", f"{worker.url}/api/batch/jobs?status=cancelling")
    assert [item["jobId"] for item in listed["items"]] == [job]
    assert [item["status"] for item in listed["items"]] == ["cancelling"]
    _, active = http("GET", f"{worker.url}/api/batch/jobs?status=active")
    assert job not in [item["jobId"] for item in active["items"]]

    view = stack.wait_finished(worker, job)
    progress = view["progress"]
    assert view["status"] == "cancelled", view
    assert progress["processed"] == progress["total"] == 50_000
    assert progress["successful"] + progress["failed"] + progress["skipped"] == 50_000
    assert 0 < progress["skipped"] < 50_000
    # the cancel's skipped records were not worked on: it shows how far it got, not 100 %
    worked = progress["successful"] + progress["failed"]
    assert progress["percentage"] == round(100 * worked / 50_000, 2) < 100
    assert _users(db) == view["summary"]["created"] == progress["successful"]
    assert "cancelled" in view["error"]

    finished, answer = http("POST", f"{worker.url}/api/batch/jobs/{job}/cancel")
    assert finished == 409 and "already cancelled" in answer["error"]["message"]
    missing, _ = http("POST", f"{worker.url}/api/batch/jobs/no-such-job/cancel")
    assert missing == 404


def test_stop_on_error_ends_the_job_failed_and_skips_the_rest(stack: Stack, db: Engine) -> None:
    worker = stack.worker(None, **SLOW).wait_ready()
    rows = ["email,name,age"] + [f"user{i}@example.com,User {i},30" for i in range(1, 5001)]
    rows[3] = "user3@example.com,User 3,not-a-number"  # record 3 fails
    body = ("\n".join(rows) + "\n").encode()
    accepted = stack.submit_csv(worker, body, chunkSize="100", stopOnError="true")
    view = stack.wait_finished(worker, accepted["jobId"])
    progress = view["progress"]
    assert view["status"] == "failed", view
    assert "stopOnError" in view["error"]
    assert progress["failed"] == 1
    assert progress["skipped"] > 0
    assert progress["successful"] + progress["failed"] + progress["skipped"] == 5_000
    assert _users(db) == progress["successful"]
    with db.connect() as connection:
        stopped = connection.execute(
            text("SELECT count(*) FROM sluice_chunks WHERE job_id = :j AND stopped = 'stopped'"),
            {"j": accepted["jobId"]},
        ).scalar_one()
    assert stopped > 0
