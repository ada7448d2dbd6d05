"""PostgreSQL faults while a 100,000-row job runs, through a TCP proxy the test controls.

Connections cut at both ends, client ends dropped while PostgreSQL keeps the sessions (and their
locks), a black hole that forwards nothing and closes nothing, a slow network, a writer process
killed inside its transaction, and the database refusing connections for a minute. Each job
ends `completed` with the `users` table and the counts exactly as expected, nothing
dead-lettered, within a stated bound; status lookups never answer a 5xx other than 503.

The workers run with short limits (FAULT_ENV): a writer stopped after 6 s on one chunk, a
connection given up after 13 s without an answer, sessions idle in a transaction ended after
3 s, lock waits of 1 s, waits for the database retried at least every 5 s. The bound, 60 s from
the first fault to the job's end, is about twice the longest of them plus the job's own time.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, make_url, text

from tests.e2e.helpers import assert_job_matches, assert_table_matches, seed_existing
from tests.support.tcp_proxy import TcpProxy
from tests.support.users_data import Upload, expected, generate
from tests.support.workers import Stack, Worker, http

ROWS = 100_000
FAULT_ENV = {
    "SLUICE_DB_STATEMENT_TIMEOUT": "3",
    "SLUICE_DB_LOCK_TIMEOUT": "1",
    "SLUICE_DB_IDLE_IN_TRANSACTION_TIMEOUT": "3",
    "SLUICE_DB_CONNECT_TIMEOUT": "3",
    "SLUICE_DB_KEEPALIVES_IDLE": "2",
    "SLUICE_DB_KEEPALIVES_INTERVAL": "1",
    "SLUICE_DB_KEEPALIVES_COUNT": "2",
    "SLUICE_CHUNK_TIMEOUT": "6",
    "SLUICE_STALL_SECONDS": "5",
}
RECOVERY_BOUND = 60.0  # seconds from the first fault to the job's end
OUTAGE_SECONDS = float(os.environ.get("SLUICE_TEST_OUTAGE_SECONDS", "60"))


@dataclass
class StatusWatch:
    """Polls a job's status all along; every answer is kept."""

    worker: Worker
    job_id: str
    answers: list[tuple[int, Any]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                code, body = http(
                    "GET", f"{self.worker.url}/api/batch/jobs/{self.job_id}", timeout=60
                )
            except OSError as exc:
                code, body = 0, repr(exc)
            self.answers.append((code, body))
            time.sleep(0.2)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(70)

    def server_errors(self) -> list[tuple[int, Any]]:
        """Answers a client cannot act on: a 5xx other than 503 with Retry-After, or none."""
        return [
            (code, body)
            for code, body in self.answers
            if code == 0
            or (code >= 500 and not (code == 503 and body["_headers"].get("Retry-After")))
        ]

    def summary(self) -> dict[tuple[int, str], int]:
        """How many answers of each kind (status code, job status or error message)."""
        kinds: dict[tuple[int, str], int] = {}
        for code, body in self.answers:
            if not isinstance(body, dict):
                kind = str(body)[:60]
            elif code == 200:
                kind = f"{body['status']} waitingOn={body['waitingOn']}"
            else:
                kind = str(body.get("error", {}).get("message"))[:60]
            kinds[code, kind] = kinds.get((code, kind), 0) + 1
        return kinds

    def waiting_seen(self) -> bool:
        return any(
            code == 200 and body.get("waitingOn") == "database" for code, body in self.answers
        )


@contextmanager
def through_proxy(stack: Stack) -> Iterator[TcpProxy]:
    url = make_url(stack.database_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        stack.database_url = url.set(host="127.0.0.1", port=proxy.port).render_as_string(
            hide_password=False
        )
        yield proxy


def applied_chunks(db: Engine) -> int:
    with db.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM sluice_chunks")).scalar_one()


def wait_for(probe: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.05)


def submit_in_background(stack: Stack, worker: Worker, upload: Upload) -> Callable[[], dict]:
    """Submit while the test goes on; the returned call waits for the 202's body."""
    answer: dict[str, Any] = {}

    def submit() -> None:
        answer.update(
            stack.submit_csv(worker, upload.csv_bytes(), chunkSize="500", updateDuplicates="true")
        )

    thread = threading.Thread(target=submit, daemon=True)
    thread.start()

    def accepted() -> dict[str, Any]:
        thread.join(120)
        assert answer, "the submission did not answer"
        return answer

    return accepted


def check_job(stack: Stack, db: Engine, worker: Worker, upload: Upload, job_id: str) -> dict:
    view = stack.wait_finished(worker, job_id, timeout=RECOVERY_BOUND + 120)
    want = expected(upload, "update")
    assert_job_matches(view, want, total=ROWS)
    assert_table_matches(db, want)
    assert view["summary"]["deadLettered"] == 0 and view["waitingOn"] is None
    with db.connect() as connection:
        chunks, applied = connection.execute(
            text(
                "SELECT count(*), count(DISTINCT chunk_index) FROM sluice_chunks WHERE job_id = :j"
            ),
            {"j": job_id},
        ).one()
    assert chunks == applied == view["progress"]["totalChunks"]  # each chunk applied once
    assert worker.metric("sluice_chunks_total", 'result="dead_lettered"') == 0
    return view


Fault = Callable[[TcpProxy, Worker], object]


def job_through(stack: Stack, db: Engine, seed: int, fault: Fault, faults: int = 3) -> None:
    """A 100,000-row job with `fault` made `faults` times, one second apart, while chunks are
    in their transactions; the time from the first fault to the job's end."""
    with through_proxy(stack) as proxy:
        worker = stack.worker(None, **FAULT_ENV).wait_ready()
        upload = generate(ROWS, seed=seed)
        seed_existing(db, upload)
        accepted = submit_in_background(stack, worker, upload)
        wait_for(lambda: applied_chunks(db) >= 3, "the first chunks applied")
        started = time.monotonic()
        for _ in range(faults):
            fault(proxy, worker)
            time.sleep(1.0)
        job_id = accepted()["jobId"]
        watch = StatusWatch(worker, job_id)
        try:
            check_job(stack, db, worker, upload, job_id)
        finally:
            watch.stop()
        took = time.monotonic() - started
    waited = worker.metric("sluice_chunks_total", 'result="waited"')
    retried = worker.metric("sluice_chunks_total", 'result="retried"')
    print(f"{proxy.faults}: done after {took:.1f} s; {waited:.0f} waits, {retried:.0f} retries")
    assert watch.server_errors() == []
    assert took < RECOVERY_BOUND, took


def test_connections_cut_at_both_ends(stack: Stack, db: Engine) -> None:
    job_through(stack, db, 61, lambda proxy, _: proxy.cut())


def test_client_ends_dropped_while_postgresql_keeps_the_sessions(stack: Stack, db: Engine) -> None:
    job_through(stack, db, 62, lambda proxy, _: proxy.drop_clients())


def test_a_black_hole_that_forwards_nothing_and_closes_nothing(stack: Stack, db: Engine) -> None:
    job_through(stack, db, 63, lambda proxy, _: proxy.black_hole())


def test_a_slow_network(stack: Stack, db: Engine) -> None:
    job_through(stack, db, 64, lambda proxy, _: proxy.delay(0.002), faults=1)


def writer_in_a_transaction(db: Engine, app: str, timeout: float = 30) -> int:
    """The pid of one of `app`'s live writer processes whose session is inside a
    transaction now."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.connect() as connection:
            names = connection.scalars(
                text(
                    "SELECT application_name FROM pg_stat_activity WHERE application_name "
                    "LIKE :writers AND xact_start IS NOT NULL"
                ),
                {"writers": f"sluice-writer-{app}-%"},
            ).all()
        for name in names:
            pid = int(name.rsplit("-", 1)[1])
            if Path(f"/proc/{pid}").exists():  # not one killed before, its session lingering
                return pid
        time.sleep(0.01)
    raise AssertionError("no writer in a transaction")


def test_a_writer_killed_inside_its_transaction(stack: Stack, db: Engine) -> None:
    def kill_a_writer(proxy: TcpProxy, worker: Worker) -> None:
        pid = writer_in_a_transaction(db, stack.app_id)
        os.kill(pid, signal.SIGKILL)
        proxy.faults.append(f"kill -9 of writer {pid}")

    job_through(stack, db, 65, kill_a_writer, faults=2)


def test_the_database_refusing_connections_for_a_minute(stack: Stack, db: Engine) -> None:
    with through_proxy(stack) as proxy:
        worker = stack.worker(None, **FAULT_ENV).wait_ready()
        upload = generate(ROWS, seed=66)
        seed_existing(db, upload)
        accepted = submit_in_background(stack, worker, upload)
        wait_for(lambda: applied_chunks(db) >= 3, "the first chunks applied")
        proxy.refuse()
        job_id = accepted()["jobId"]
        watch = StatusWatch(worker, job_id)
        try:
            time.sleep(2)  # what was in a transaction when the connections went is rolled back
            paused_at = applied_chunks(db)
            time.sleep(OUTAGE_SECONDS - 2)
            assert applied_chunks(db) == paused_at  # the job paused: nothing applied, no loss
            proxy.accept()
            resumed = time.monotonic()
            check_job(stack, db, worker, upload, job_id)
            took = time.monotonic() - resumed
        finally:
            watch.stop()
    print(f"outage of {OUTAGE_SECONDS:.0f} s after {paused_at} chunks; done {took:.1f} s after")
    assert watch.waiting_seen(), f"never said it waits for the database: {watch.summary()}"
    assert watch.server_errors() == []
    assert took < RECOVERY_BOUND, took
