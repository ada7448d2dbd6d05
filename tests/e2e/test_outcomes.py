"""Outcome events as an upstream system consumes them: a confluent-kafka (librdkafka) consumer,
written as docs/upstream.md shows, follows a job on `<app>.outcomes` to `completed` with the
same counts as the status API. It reads both forms, JSON and Avro single-object encoding (with
fastavro and the published schema, no Sluice code), by their first bytes."""

from __future__ import annotations

import io
import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer
from fastavro import parse_schema, schemaless_reader
from fastavro.schema import fingerprint, to_parsing_canonical_form

from tests.support.workers import Stack, http

OUTCOME_SCHEMA = parse_schema(
    json.loads(
        (Path(__file__).resolve().parents[2] / "schemas/outcomes/job_outcome.v1.avsc").read_text()
    )
)
OUTCOME_FINGERPRINT = bytes.fromhex(
    fingerprint(to_parsing_canonical_form(OUTCOME_SCHEMA), "CRC-64-AVRO")
)  # little-endian, as on the wire
Outcome = tuple[str, str | None, dict[str, Any]]  # (form by first bytes, sluice-format, event)


def decode_outcome(value: bytes) -> tuple[str, dict[str, Any]]:
    """An outcome message's form and event: Avro single-object (`C3 01` + fingerprint) or JSON."""
    if value[:2] == b"\xc3\x01":
        assert value[2:10] == OUTCOME_FINGERPRINT, value[:10].hex()
        event = schemaless_reader(io.BytesIO(value[10:]), OUTCOME_SCHEMA)
        assert isinstance(event, dict)
        return "avro", event
    return "json", json.loads(value)


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


def poll_until(consumer: Consumer, take: Callable[[Any], bool], timeout: float) -> bool:
    """Hand `take` each message the consumer reads until it answers True (then True), or
    `timeout` passes (then False); the consumer is closed either way."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            if take(message):
                return True
    finally:
        consumer.close()
    return False


def outcome_messages_of(
    servers: str,
    topic: str,
    job_id: str,
    until: Callable[[dict[str, Any]], bool] = lambda event: bool(event["final"]),
    timeout: float = 60,
) -> list[Outcome]:
    """The job's outcome messages, in order, up to the first event `until` holds for."""
    found: list[Outcome] = []

    def take(message: Any) -> bool:
        if message.key() != job_id.encode():
            return False
        form, event = decode_outcome(message.value())
        named = dict(message.headers() or []).get("sluice-format")
        found.append((form, named.decode() if named is not None else None, event))
        return bool(until(event))

    if not poll_until(outcome_consumer(servers, topic, job_id), take, timeout):
        raise AssertionError(f"no such outcome for {job_id} within {timeout} s: {found}")
    return found


def outcomes_of(
    servers: str, topic: str, job_id: str, timeout: float = 60, finals: int = 1
) -> list[dict]:
    """The job's outcome events, in order, up to its `finals`-th final one (a job made active
    again by a replay or a late record is final again)."""
    seen = [0]

    def until(event: dict[str, Any]) -> bool:
        seen[0] += bool(event["final"])
        return seen[0] == finals

    messages = outcome_messages_of(servers, topic, job_id, until, timeout=timeout)
    return [event for _, _, event in messages]


def counts_of(view: dict[str, Any]) -> dict[str, Any]:
    """The counts an outcome event should carry, as the status API shows them."""
    progress, summary = view["progress"], view["summary"]
    return {
        "total": progress["total"],
        "processed": progress["processed"],
        "successful": progress["successful"],
        "failed": progress["failed"],
        "skipped": progress["skipped"],
        "created": summary["created"],
        "updated": summary["updated"],
        "deadLettered": summary["deadLettered"],
    }


def test_a_consumer_sees_the_job_complete_with_the_status_apis_counts(stack: Stack) -> None:
    worker = stack.worker().wait_ready()
    rows = "".join(f"user{i}@example.com,User {i}\n" for i in range(1, 2001))
    body = f"email,name\n{rows}not-an-email,Broken\n".encode()
    job_id = stack.submit_csv(worker, body, chunkSize=100)["jobId"]
    view = stack.wait_finished(worker, job_id)

    found = outcome_messages_of(stack.bootstrap_servers, f"{stack.app_id}.outcomes", job_id)
    assert {(form, named) for form, named, _ in found} == {("json", "json")}  # an API job's form
    events = [event for _, _, event in found]
    assert events[0]["status"] == "queued" and events[0]["previousStatus"] is None
    for before, after in itertools.pairwise(events):
        assert after["previousStatus"] == before["status"] != after["status"]
    final = events[-1]
    assert (final["status"], final["jobId"], final["tenant"]) == ("completed", job_id, "default")
    assert final["counts"] == counts_of(view)
    assert (final["counts"]["successful"], final["counts"]["failed"]) == (2000, 1)
    status, _ = http("GET", f"{worker.url}/api/batch/jobs/{job_id}")
    assert status == 200
