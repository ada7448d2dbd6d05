"""Workers that stop, crash and drain: tables recover exactly, jobs complete exactly once."""

from __future__ import annotations

import re
import time

from sqlalchemy import Engine, text

from tests.e2e.helpers import assert_job_matches, assert_table_matches, seed_existing
from tests.support.users_data import expected, generate
from tests.support.workers import Stack, http

# One writer and one chunk per batch make a 1000-chunk job last long enough to kill mid-way.
SLOW = {"SLUICE_WRITERS": "1", "SLUICE_BATCH_CHUNKS": "1"}


def _wait_processed_between(
    stack: Stack, url: str, job_id: str, low: float, high: float, total: int
) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status, view = http("GET", f"{url}/api/batch/jobs/{job_id}")
        if status == 200:
            processed = view["progress"]["processed"]
            assert processed < high * total, f"job ran too far before the kill: {processed}"
            if processed >= low * total:
                return int(processed)
        time.sleep(0.05)
    raise AssertionError("job never started")


def test_worker_killed_mid_job_recovers_tables_exactly(stack: Stack, db: Engine) -> None:
    worker = stack.worker(None, **SLOW).wait_ready()
    port = worker.port

    small = generate(500, seed=21, existing=0)
    for row in small.rows:  # its own identities, so the two jobs' expectations add up
        row.values["email"] = re.sub(
            "@example.com", "@small.example", row.values["email"], flags=re.IGNORECASE
        )
    first = stack.submit_csv(worker, small.csv_bytes(), chunkSize="100")
    before = stack.wait_finished(worker, first["jobId"])

    upload = generate(100_000, seed=22, existing=0)
    accepted = stack.submit_csv(
        worker, upload.csv_bytes(), chunkSize="100", updateDuplicates="true"
    )
    at_kill = _wait_processed_between(stack, worker.url, accepted["jobId"], 0.05, 0.9, 100_000)
    worker.kill()

    started = time.monotonic()
    restarted = stack.worker(port, **SLOW).wait_ready()
    ready_after = time.monotonic() - started
    # the finished job's state came back from the changelog exactly
    status, after = http("GET", f"{restarted.url}/api/batch/jobs/{first['jobId']}")
    assert status == 200
    assert after["progress"] == before["progress"] and after["summary"] == before["summary"]

    view = stack.wait_finished(restarted, accepted["jobId"], timeout=300)
    print(f"killed at {at_kill} processed; restarted worker ready after {ready_after:.1f}s")
    want = expected(upload, "update")
    assert_job_matches(view, want, total=100_000)
    want.table.update(expected(small, "skip").table)
    assert_table_matches(db, want)
    with db.connect() as connection:
        applied = connection.execute(
            text("SELECT count(*), sum(records) FROM sluice_chunks WHERE job_id = :j"),
            {"j": accepted["jobId"]},
        ).one()
    assert tuple(applied) == (view["progress"]["totalChunks"], 100_000)


def test_until_idle_worker_drains_and_exits(stack: Stack, db: Engine) -> None:
    worker = stack.worker(None, **SLOW).wait_ready()
    upload = generate(20_000, seed=31)
    seed_existing(db, upload)
    accepted = stack.submit_csv(worker, upload.csv_bytes(), chunkSize="100", skipDuplicates="true")
    worker.stop()  # graceful: in-flight chunks finish, the rest wait on the topic
    with db.connect() as connection:
        done_before = connection.execute(text("SELECT count(*) FROM sluice_chunks")).scalar_one()
    assert done_before < accepted["totalChunks"]

    drainer = stack.worker(None, "--until-idle")
    assert drainer.process is not None
    code = drainer.process.wait(timeout=180)
    assert code == 0, drainer.tail()

    want = expected(upload, "skip")
    assert_table_matches(db, want)
    with db.connect() as connection:
        sums = connection.execute(
            text(
                "SELECT count(*), sum(records), sum(successful), sum(failed), sum(skipped) "
                "FROM sluice_chunks WHERE job_id = :j"
            ),
            {"j": accepted["jobId"]},
        ).one()
    assert tuple(sums) == (
        accepted["totalChunks"],
        20_000,
        want.successful,
        want.failed,
        want.skipped,
    )
