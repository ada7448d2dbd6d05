"""Kafka unreachable at submission: 503 with Retry-After, no job, nothing half-written."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import Engine, text

from streams.devbroker import start_dev_broker
from tests.support.workers import Stack, http


def test_submission_without_a_broker_is_503_and_leaves_no_job(
    schema_url: str, db: Engine, tmp_path: Path
) -> None:
    broker = start_dev_broker(log_path=tmp_path / "own-broker.log")  # this test kills it
    stack = Stack(broker.bootstrap_servers, schema_url, f"t{uuid.uuid4().hex[:10]}", tmp_path)
    try:
        worker = stack.worker(None, SLUICE_SUBMIT_TIMEOUT="3").wait_ready()
        broker.stop()
        status, answer = http(
            "POST",
            f"{worker.url}/api/batch/jobs?type=user-import",
            b"email,name\na@example.com,A\n",
            {"Content-Type": "text/csv"},
        )
        assert status == 503, answer
        assert answer["_headers"]["Retry-After"] == "5"
        assert "Kafka did not acknowledge" in answer["error"]["message"]
        with db.connect() as connection:
            jobs = connection.execute(text("SELECT count(*) FROM sluice_jobs")).scalar_one()
            users = connection.execute(text("SELECT count(*) FROM users")).scalar_one()
        assert (jobs, users) == (0, 0)
    finally:
        for worker in stack.workers:  # a graceful stop would wait for the dead broker
            worker.kill()
        broker.stop()
