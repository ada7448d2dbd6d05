"""Outcome events as an upstream system consumes them: a confluent-kafka (librdkafka) consumer,
written as docs/upstream.md shows, follows a job on `<app>.outcomes` to `completed` with the
same counts as the status API."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from confluent_kafka import Consumer

from tests.support.workers import Stack, http


def outcome_consumer(servers: str, topic: str, job_id: str) -> Consumer:
    """A consumer of the outcome topic from its beginning, in a group of its own."""
    consumer = Consumer(
        {
            "bootstrap.servers": servers,
            "group.id": f"outcome-reader-{job_id}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    return consumer


def outcomes_of(
    servers: str, topic: str, job_id: str, timeout: float = 60, finals: int = 1
) -> list[dict]:
    """The job's outcome events, in order, up to its `finals`-th final one (a job made active
    again by a replay or a late record is final again)."""
    consumer = outcome_consumer(servers, topic, job_id)
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            if message.key() != job_id.encode():
                continue
            event = json.loads(message.value())
            events.append(event)
            if sum(e["final"] for e in events) == finals:
                return events
    finally:
        consumer.close()
    raise AssertionError(f"no final outcome for {job_id} within {timeout} s: {events}")


def test_a_consumer_sees_the_job_complete_with_the_status_apis_counts(stack: Stack) -> None:
    worker = stack.worker().wait_ready()
    rows = "".join(f"user{i}@example.com,User {i}\n" for i in range(1, 2001))
    body = f"email,name\n{rows}not-an-email,Broken\n".encode()
    job_id = stack.submit_csv(worker, body, chunkSize=100)["jobId"]
    view = stack.wait_finished(worker, job_id)

    events = outcomes_of(stack.bootstrap_servers, f"{stack.app_id}.outcomes", job_id)
    assert events[0]["status"] == "queued" and events[0]["previousStatus"] is None
    for before, after in itertools.pairwise(events):
        assert after["previousStatus"] == before["status"] != after["status"]
    final = events[-1]
    assert (final["status"], final["jobId"], final["tenant"]) == ("completed", job_id, "default")
    progress = view["progress"]
    assert final["counts"] == {
        "total": progress["total"],
        "processed": progress["processed"],
        "successful": progress["successful"],
        "failed": progress["failed"],
        "skipped": progress["skipped"],
        "created": view["summary"]["created"],
        "updated": view["summary"]["updated"],
        "deadLettered": view["summary"]["deadLettered"],
    }
    assert (final["counts"]["successful"], final["counts"]["failed"]) == (2000, 1)
    status, _ = http("GET", f"{worker.url}/api/batch/jobs/{job_id}")
    assert status == 200
