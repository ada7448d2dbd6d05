"""Upstream work as an upstream team does it: a confluent-kafka (librdkafka) producer that knows
only docs/upstream.md produces JSON records onto `<app>.in.user-import`; the expectations are
built here from the records, independently of Sluice."""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import Any

from confluent_kafka import Producer
from sqlalchemy import Engine, text

from tests.support.workers import Stack, Worker, http

TOPIC = "{app}.in.user-import"


def producer(stack: Stack) -> Producer:
    return Producer({"bootstrap.servers": stack.bootstrap_servers, "linger.ms": 20})


def send(
    out: Producer,
    topic: str,
    value: Any,
    *,
    key: str | None = None,
    partition: int | None = None,
    **headers: str,
) -> None:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    named = [(name.replace("_", "-"), text.encode()) for name, text in headers.items()]
    extra = {} if partition is None else {"partition": partition}
    out.produce(topic, raw, key=key.encode() if key else None, headers=named, **extra)
    out.poll(0)


def job_of_batch(worker: Worker, batch: str, timeout: float = 60) -> dict[str, Any]:
    query = urllib.parse.urlencode({"batchId": batch})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, listing = http("GET", f"{worker.url}/api/batch/jobs?{query}")
        assert status == 200, listing
        if listing["items"]:
            return dict(listing["items"][0])
        time.sleep(0.5)
    raise AssertionError(f"no job for batch {batch!r}")


def finished(stack: Stack, worker: Worker, batch: str) -> dict[str, Any]:
    return stack.wait_finished(worker, job_of_batch(worker, batch)["jobId"])


def users(db: Engine) -> dict[str, tuple[str, Any]]:
    with db.connect() as connection:
        found = connection.execute(text("SELECT email, name, age FROM users"))
        return {email: (name, age) for email, name, age in found}


def test_a_batch_with_producer_retries_counts_each_record_once(stack: Stack, db: Engine) -> None:
    worker = stack.worker().wait_ready()
    topic = TOPIC.format(app=stack.app_id)
    records = [
        {"email": f"User{i}@Example.com", "name": f"User {i}", "age": 20 + i % 50}
        for i in range(1, 20_001)
    ]
    for i in range(0, len(records), 997):  # invalid ones, failing alone
        records[i] = {"email": f"broken-{i}", "name": "Broken"}
    for i in range(5, len(records), 1000):  # a later record of an earlier user: the last wins
        records[i] = {"email": "user1@example.com", "name": f"Again {i}", "age": 99}
    out = producer(stack)
    send(
        out,
        topic,
        {"options": {"updateDuplicates": True}},
        sluice_batch="b-1",
        sluice_control="begin",
    )
    out.flush()
    for seq, record in enumerate(records, 1):
        headers = {"sluice_batch": "b-1", "sluice_seq": str(seq)}
        send(out, topic, record, key=record["email"].lower(), **headers)
        if seq % 10 == 0:  # a producer retry: the same record again
            send(out, topic, record, key=record["email"].lower(), **headers)
    send(out, topic, {"count": len(records)}, sluice_batch="b-1", sluice_control="end")
    out.flush()

    view = finished(stack, worker, "b-1")
    valid = [r for r in records if "@" in r["email"]]
    want: dict[str, tuple[str, Any]] = {}
    for record in valid:
        want[record["email"].lower()] = (record["name"], record["age"])
    progress = view["progress"]
    assert view["status"] == "completed", view
    assert (progress["total"], progress["processed"]) == (len(records), len(records))
    assert (progress["successful"], progress["failed"]) == (len(valid), len(records) - len(valid))
    assert users(db) == want


def test_a_bad_message_fails_alone_and_the_rest_apply_in_order(stack: Stack, db: Engine) -> None:
    worker = stack.worker().wait_ready()
    topic = TOPIC.format(app=stack.app_id)
    out = producer(stack)
    send(
        out,
        topic,
        {"options": {"updateDuplicates": True}},
        sluice_batch="b-2",
        sluice_control="begin",
    )
    out.flush()
    values: list[Any] = [
        {"email": "ann@example.com", "name": "First"},
        b"{not json",
        {"email": "ann@example.com", "name": "Second"},
        [1, 2, 3],
        {"email": "ann@example.com", "name": "Third"},
    ]
    for seq, value in enumerate(values, 1):
        send(out, topic, value, partition=0, sluice_batch="b-2", sluice_seq=str(seq))
    send(out, topic, {"count": 5}, partition=0, sluice_batch="b-2", sluice_control="end")
    out.flush()

    view = finished(stack, worker, "b-2")
    assert view["status"] == "completed", view
    assert (view["progress"]["successful"], view["progress"]["failed"]) == (3, 2)
    assert users(db) == {"ann@example.com": ("Third", None)}
    status, page = http("GET", f"{worker.url}/api/batch/jobs/{view['jobId']}/results?status=failed")
    assert status == 200
    assert [(r["row"], "JSON" in r["reason"]) for r in page["items"]] == [(2, True), (4, True)]


def test_records_without_a_batch_join_the_standing_job_of_the_day(stack: Stack) -> None:
    worker = stack.worker().wait_ready()
    topic = TOPIC.format(app=stack.app_id)
    out = producer(stack)
    for i in range(1, 51):
        send(out, topic, {"email": f"day{i}@example.com", "name": f"Day {i}"}, key=f"day{i}")
    send(out, topic, {"email": "no-at-sign", "name": "Bad"})
    out.flush()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _, listing = http("GET", f"{worker.url}/api/batch/jobs")
        jobs = [j for j in listing["items"] if j.get("origin") == "topic"]
        if jobs:
            _, view = http("GET", f"{worker.url}/api/batch/jobs/{jobs[0]['jobId']}")
            if view["progress"]["processed"] == 51:
                break
        time.sleep(0.5)
    else:
        raise AssertionError("the standing job did not count the 51 records")
    assert len(jobs) == 1 and jobs[0]["batchId"] is None
    assert (view["progress"]["successful"], view["progress"]["failed"]) == (50, 1)
    assert view["status"] == "active"  # it stands for the rest of its day
