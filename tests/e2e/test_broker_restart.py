"""The whole dev stack restarted, broker included (a new dev broker holds nothing; the database is
the same): finished jobs answer from the job registry as they did, a job unfinished at the restart
ends failed saying why with what was applied, lost dead letters are counted; a restart of the
workers alone (the broker kept its data) fails nothing.

A PostgreSQL trigger on `users` makes the jobs' chunks behave: a row named "boom" fails its chunk
(dead-lettered at once: retryAttempts=0), a row named "hold" waits for an advisory lock the test
holds, so its chunk waits for the database (lock timeout) and its job stays unfinished.
"""

from __future__ import annotations

import shutil
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from streams.devbroker import DevBroker, start_dev_broker
from streams.kept import LOST_REASON
from tests.support.kafka_io import eventually
from tests.support.schemas import app_id
from tests.support.workers import Stack, Worker, http

HOLD_LOCK = 4242
TRIGGER = f"""
CREATE OR REPLACE FUNCTION sluice_test_restart() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF NEW.name = 'boom' THEN RAISE EXCEPTION 'boom row %', NEW.email; END IF;
    IF NEW.name = 'hold' THEN PERFORM pg_advisory_xact_lock({HOLD_LOCK}); END IF;
    RETURN NEW;
END
$fn$;
CREATE TRIGGER users_restart BEFORE INSERT OR UPDATE ON users
FOR EACH ROW EXECUTE FUNCTION sluice_test_restart();
"""
OPTIONS = {"chunkSize": "100", "retryAttempts": "0"}
WORKER_ENV = {"SLUICE_DB_LOCK_TIMEOUT": "1"}
FINISHED = ("completed", "failed", "cancelled")


def _csv(tag: str, rows: int, special: dict[int, str]) -> bytes:
    """`rows` users of their own (`tag`); row numbers in `special` get that name."""
    lines = ["email,name"]
    lines += [f"u{i}-{tag}@example.com,{special.get(i, f'User {i}')}" for i in range(1, rows + 1)]
    return ("\n".join(lines) + "\n").encode()


def _get(worker: Worker, path: str, **query: str) -> Any:
    url = f"{worker.url}/api/batch{path}" + ("?" + urllib.parse.urlencode(query) if query else "")
    status, body = http("GET", url, timeout=30)
    assert status == 200, (path, status, body)
    if isinstance(body, dict):
        body.pop("_headers", None)
    return body


def _results(worker: Worker, job_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = ""
    while cursor is not None:
        after = {"cursor": cursor} if cursor else {}
        page = _get(worker, f"/jobs/{job_id}/results", limit="1000", **after)
        items += page["items"]
        cursor = page["nextCursor"]
    return items


def _listed(worker: Worker) -> dict[str, str]:
    return {item["jobId"]: item["status"] for item in _get(worker, "/jobs", limit="100")["items"]}


@contextmanager
def _held(db: Engine) -> Iterator[None]:
    """Hold the advisory lock "hold" rows wait for, until the block ends."""
    with db.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": HOLD_LOCK})
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": HOLD_LOCK})
            connection.commit()


def _waiting(worker: Worker, job_id: str) -> dict[str, Any]:
    """The job's status once one of its chunks waits for the database (the held lock)."""

    def seen() -> dict[str, Any] | None:
        view = _get(worker, f"/jobs/{job_id}")
        return view if view["waitingOn"] == "database" and view["progress"]["processed"] else None

    return eventually(seen, timeout=120, what=f"job {job_id} waiting for the database")


def _new_stack(stack: Stack, broker: DevBroker) -> Stack:
    """The same database, app id and folder on a new broker; the workers' local state wiped,
    as `sluice run` does when it starts a new dev broker."""
    stack.stop_all()
    shutil.rmtree(stack.workdir / "data", ignore_errors=True)
    return Stack(broker.bootstrap_servers, stack.database_url, stack.app_id, stack.workdir)


def _view(worker: Worker, job_id: str) -> dict[str, Any]:
    """The job's status, once the worker answers it (not 503 while it takes its partitions)."""

    def answered() -> dict[str, Any] | None:
        status, view = http("GET", f"{worker.url}/api/batch/jobs/{job_id}", timeout=30)
        if status == 503:
            return None
        assert status == 200, (status, view)
        view.pop("_headers", None)
        return dict(view)

    return eventually(answered, timeout=60, what=f"the status of job {job_id}")


def _applied(db: Engine, job_id: str) -> tuple[int, int]:
    """(records the ledger says were applied, users the job created)."""
    with db.connect() as connection:
        records = connection.execute(
            text("SELECT coalesce(sum(records), 0) FROM sluice_chunks WHERE job_id = :j"),
            {"j": job_id},
        ).scalar_one()
        users = connection.execute(
            text("SELECT count(*) FROM users WHERE batch_job_id = :j"), {"j": job_id}
        ).scalar_one()
    return int(records), int(users)


def test_a_restarted_dev_stack_answers_for_every_job_from_what_the_database_holds(
    schema_url: str, db: Engine, tmp_path: Path
) -> None:
    broker = start_dev_broker(log_path=tmp_path / "broker-1.log")
    stack = Stack(broker.bootstrap_servers, schema_url, app_id(), tmp_path)
    try:
        worker = stack.worker(None, **WORKER_ENV).wait_ready()
        with db.begin() as connection:
            connection.execute(text(TRIGGER))
        done = stack.submit_csv(worker, _csv("done", 500, {250: "boom"}), **OPTIONS)["jobId"]
        before = stack.wait_finished(worker, done)
        before.pop("_headers")
        assert before["summary"]["deadLetteredChunks"] == 1, before
        assert len(_get(worker, "/dlq", job=done)["items"]) == 1
        results_before = _results(worker, done)
        with _held(db):
            body = _csv("unfinished", 2000, {2000: "hold"})
            unfinished = stack.submit_csv(worker, body, **OPTIONS)["jobId"]
            _waiting(worker, unfinished)
            worker.kill()  # a graceful stop would wait for the waiting chunk
            broker.stop()  # and with it every topic, offset and changelog

        broker = start_dev_broker(log_path=tmp_path / "broker-2.log")
        stack = _new_stack(stack, broker)
        worker = stack.worker(None, **WORKER_ENV).wait_ready()

        _check_finished_job(worker, done, before, results_before)
        _check_lost_job(worker, db, unfinished)
        listed = _listed(worker)
        assert (listed[done], listed[unfinished]) == (before["status"], "failed"), listed
        _check_delete(worker, unfinished)
        _check_healthy_restart(stack, worker, db, done)
    finally:
        stack.stop_all()
        broker.stop()


def _check_finished_job(
    worker: Worker, job_id: str, before: dict[str, Any], results_before: list[dict[str, Any]]
) -> None:
    """Status, counts and results as they were; its dead letter reported lost; cancel refused."""
    after = _view(worker, job_id)
    lost = after["summary"].pop("deadLettersLost")
    summary = {k: v for k, v in before["summary"].items() if k != "deadLettersLost"}
    assert (lost, after) == (1, {**before, "summary": summary})
    assert _results(worker, job_id) == results_before
    assert _get(worker, "/dlq", job=job_id)["items"] == []  # gone with the broker
    status, answer = http("POST", f"{worker.url}/api/batch/jobs/{job_id}/cancel")
    assert status == 409 and f"is already {before['status']}" in answer["error"]["message"]


def _check_lost_job(worker: Worker, db: Engine, job_id: str) -> None:
    """Failed, saying why, with what was applied (rows and results kept); cancel refused."""
    view = _view(worker, job_id)
    assert (view["status"], view["error"]) == ("failed", LOST_REASON), view
    records, users = _applied(db, job_id)
    progress = view["progress"]
    assert 0 < progress["processed"] == records < 2000, (view, records)
    assert progress["successful"] == view["summary"]["created"] == users
    assert view["completedAt"] is not None and view["expiresAt"] is not None
    assert view["waitingOn"] is None
    assert len(_results(worker, job_id)) == records
    status, answer = http("POST", f"{worker.url}/api/batch/jobs/{job_id}/cancel")
    assert status == 409 and "is already failed" in answer["error"]["message"]


def _check_delete(worker: Worker, job_id: str) -> None:
    status, answer = http("DELETE", f"{worker.url}/api/batch/jobs/{job_id}")
    assert status == 204, answer
    status, _ = http("GET", f"{worker.url}/api/batch/jobs/{job_id}")
    assert status == 404


def _check_healthy_restart(stack: Stack, worker: Worker, db: Engine, done: str) -> None:
    """The workers alone restart (the broker kept everything): a job waiting stays active and
    then completes; jobs from after the broker's restart are as they were."""
    fresh = stack.submit_csv(worker, _csv("fresh", 300, {}), **OPTIONS)["jobId"]
    assert stack.wait_finished(worker, fresh)["status"] == "completed"
    with _held(db):
        body = _csv("waiting", 1000, {1000: "hold"})
        waiting = stack.submit_csv(worker, body, **OPTIONS)["jobId"]
        _waiting(worker, waiting)
        worker.kill()
        worker = stack.worker(None, **WORKER_ENV).wait_ready()
        view = _view(worker, waiting)
        assert (view["status"], view["error"]) == ("active", None), view
    view = stack.wait_finished(worker, waiting)
    assert (view["status"], view["progress"]["processed"]) == ("completed", 1000), view
    assert _view(worker, fresh)["status"] == "completed"
    assert _view(worker, done)["summary"]["deadLettersLost"] == 1
