"""kill -9 of one of two workers in the middle of a job: it completes, exactly once in effect."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import Engine, text

from tests.e2e.helpers import assert_job_matches, assert_table_matches, seed_existing
from tests.support.users_data import expected, generate
from tests.support.workers import Stack, http

SLOW = {"SLUICE_WRITERS": "1", "SLUICE_BATCH_CHUNKS": "1"}


def test_kill_one_of_two_workers_mid_job(stack: Stack, db: Engine) -> None:
    first = stack.worker(None, **SLOW).wait_ready()
    second = stack.worker(None, **SLOW).wait_ready()
    first.wait_ready()
    upload = generate(50_000, seed=51)
    seed_existing(db, upload)
    accepted = stack.submit_csv(first, upload.csv_bytes(), chunkSize="100", updateDuplicates="true")
    job = accepted["jobId"]
    deadline = time.monotonic() + 120
    processed = 0
    while time.monotonic() < deadline:
        _, view = http("GET", f"{second.url}/api/batch/jobs/{job}")
        processed = view.get("progress", {}).get("processed", 0)
        if processed >= 5_000:
            break
        time.sleep(0.05)
    assert 0 < processed < 50_000, processed
    assert first.process is not None
    writers = _children(first.process.pid)
    assert writers or not LINUX, "the worker has writer processes"
    killed_at = time.monotonic()
    first.kill()

    view = stack.wait_finished(second, job, timeout=300)
    recovered_in = time.monotonic() - killed_at
    print(f"killed at {processed} processed; job completed {recovered_in:.1f}s later")
    want = expected(upload, "update")
    assert_job_matches(view, want, total=50_000)
    assert_table_matches(db, want)
    with db.connect() as connection:
        chunks, records = connection.execute(
            text("SELECT count(*), sum(records) FROM sluice_chunks WHERE job_id = :j"),
            {"j": job},
        ).one()
    assert (chunks, records) == (accepted["totalChunks"], 50_000)
    # the killed worker's writer processes did not stay behind holding database connections:
    # they look for their parent every second, and the job may finish sooner than that
    orphans = [pid for pid in writers if Path(f"/proc/{pid}").exists()]
    gone_by = killed_at + 5
    while orphans and time.monotonic() < gone_by:
        time.sleep(0.1)
        orphans = [pid for pid in orphans if Path(f"/proc/{pid}").exists()]
    assert not orphans, orphans


LINUX = Path("/proc/self/stat").exists()


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux /proc; elsewhere none are found)."""
    found: list[int] = []
    if not LINUX:
        return found
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # the field after the parenthesised command name is the state, then the parent pid
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found
