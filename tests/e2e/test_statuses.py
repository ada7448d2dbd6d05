"""Statuses that say what happened: a job whose records failed, or whose chunks were
dead-lettered, is `completed` (every chunk accounted for) and says so beside its status:
`outcome` (clean, withErrors, allFailed), `hasErrors`, `summary.errorsTotal` beside the sample
of 10 errors, `summary.deadLettered`. Real worker, real broker, real PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text

from tests.support.workers import Stack, Worker, http

# names starting with "boom" make PostgreSQL refuse the row: its chunk fails and, with
# retryAttempts=0, is dead-lettered at once (as in tests/e2e/test_replay.py)
BOOM = """
CREATE OR REPLACE FUNCTION sluice_test_boom() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF NEW.name LIKE 'boom%' THEN
        RAISE EXCEPTION 'boom row %', NEW.email;
    END IF;
    RETURN NEW;
END
$fn$
"""
BOOM_TRIGGER = (
    "CREATE TRIGGER users_boom BEFORE INSERT OR UPDATE ON users "
    "FOR EACH ROW EXECUTE FUNCTION sluice_test_boom()"
)


def csv_of(rows: list[tuple[str, str]]) -> bytes:
    return ("email,name\n" + "".join(f"{email},{name}\n" for email, name in rows)).encode()


def finished(stack: Stack, worker: Worker, rows: list[tuple[str, str]], **options: Any) -> dict:
    accepted = stack.submit_csv(worker, csv_of(rows), **options)
    return stack.wait_finished(worker, accepted["jobId"])


def test_failed_records_complete_the_job_and_say_so(stack: Stack) -> None:
    worker = stack.worker().wait_ready()

    # 10 of 10 records fail: completed (every chunk was applied), but allFailed
    every = finished(stack, worker, [(f"no-at-sign-{n}.example.com", "N") for n in range(10)])
    assert (every["status"], every["outcome"], every["hasErrors"]) == (
        "completed",
        "allFailed",
        True,
    )
    assert (every["progress"]["failed"], every["summary"]["errorsTotal"]) == (10, 10)
    assert len(every["summary"]["errors"]) == 10

    # 25 failed among 40: errorsTotal says 25 beside the sample of 10
    rows = [
        (f"bad{n}.example.com" if n % 8 < 5 else f"good{n}@example.com", f"User {n}")
        for n in range(40)
    ]
    some = finished(stack, worker, rows, chunkSize="100")
    assert (some["status"], some["outcome"], some["hasErrors"]) == ("completed", "withErrors", True)
    assert (some["summary"]["errorsTotal"], len(some["summary"]["errors"])) == (25, 10)
    status, groups = http("GET", f"{worker.url}/api/batch/jobs/{some['jobId']}/errors")
    assert status == 200, groups
    assert sum(group["count"] for group in groups["groups"]) == 25

    # nothing failed: clean, even with skipped duplicates
    rows = [(f"same{n % 5}@example.com", f"User {n}") for n in range(10)]
    clean = finished(stack, worker, rows, skipDuplicates="true")
    assert (clean["outcome"], clean["hasErrors"], clean["summary"]["errorsTotal"]) == (
        "clean",
        False,
        0,
    )
    assert (clean["progress"]["successful"], clean["progress"]["skipped"]) == (5, 5)

    # the listing keeps the five statuses: nothing new for clients that switch on them
    status, listing = http("GET", f"{worker.url}/api/batch/jobs")
    assert status == 200
    assert {item["status"] for item in listing["items"]} == {"completed"}


def test_dead_lettered_records_are_counted_and_change_the_outcome(stack: Stack, db: Engine) -> None:
    worker = stack.worker().wait_ready()  # it makes the tables
    with db.begin() as connection:
        connection.execute(text(BOOM))
        connection.execute(text(BOOM_TRIGGER))
    dead = {"retryAttempts": "0", "chunkSize": "100"}

    # every chunk holds boom rows: 1,000 records dead-lettered, the job completed, allFailed
    rows = [(f"all{n}@example.com", "boom" if n % 3 == 0 else f"User {n}") for n in range(1_000)]
    every = finished(stack, worker, rows, **dead)
    summary = every["summary"]
    assert (every["status"], every["outcome"], every["hasErrors"]) == (
        "completed",
        "allFailed",
        True,
    )
    assert (summary["deadLettered"], summary["errorsTotal"], every["progress"]["failed"]) == (
        1_000,
        1_000,
        1_000,
    )
    assert summary["deadLetteredChunks"] == every["progress"]["totalChunks"]
    assert len(summary["errors"]) == 10

    # one boom row among 400: its chunk's records are dead-lettered, the rest applied
    rows = [(f"one{n}@example.com", "boom" if n == 123 else f"User {n}") for n in range(400)]
    some = finished(stack, worker, rows, **dead)
    summary = some["summary"]
    assert (some["status"], some["outcome"]) == ("completed", "withErrors")
    assert summary["deadLetteredChunks"] == 1
    assert summary["deadLettered"] == summary["errorsTotal"] == some["progress"]["failed"]
    assert 0 < summary["deadLettered"] < 400
    assert some["progress"]["successful"] == 400 - summary["deadLettered"]
