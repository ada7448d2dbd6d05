"""Upstream work as an upstream team does it: a confluent-kafka (librdkafka) producer that knows
only docs/upstream.md produces JSON records onto `<app>.in.user-import`; the expectations are
built here from the records, independently of Sluice."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
from typing import Any

from confluent_kafka import Producer
from sqlalchemy import Engine, text

from tests.e2e.test_outcomes import outcome_consumer, outcomes_of
from tests.support.workers import REPO, Stack, Worker, http

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
    timestamp: int | None = None,
    **headers: str,
) -> None:
    """`timestamp`: the message's (milliseconds since the epoch; None: librdkafka's now)."""
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    named = [(name.replace("_", "-"), text.encode()) for name, text in headers.items()]
    extra: dict[str, int] = {} if partition is None else {"partition": partition}
    if timestamp is not None:
        extra["timestamp"] = timestamp
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


def users(db: Engine, tenant: str = "default") -> dict[str, tuple[str, Any]]:
    with db.connect() as connection:
        found = connection.execute(
            text("SELECT email, name, age FROM users WHERE tenant = :tenant"), {"tenant": tenant}
        )
        return {email: (name, age) for email, name, age in found}


def test_a_batch_with_producer_retries_matches_the_same_records_over_http(
    stack: Stack, db: Engine
) -> None:
    """100,000 records in one batch, every 10th produced twice (a producer's retries): the
    job's counts and the users table are what the records say, and what the same records give
    over HTTP (another tenant's import); an outcome consumer sees the same final counts."""
    worker = stack.worker().wait_ready()
    topic = TOPIC.format(app=stack.app_id)
    records = [
        {"email": f"User{i}@Example.com", "name": f"User {i}", "age": 20 + i % 50}
        for i in range(1, 100_001)
    ]
    for i in range(0, len(records), 997):  # invalid ones, failing alone
        records[i] = {"email": f"broken-{i}", "name": "Broken"}
    for i in range(5, len(records), 1000):  # a later record of an earlier user: the last wins
        records[i] = {"email": "user1@example.com", "name": f"Again {i}", "age": 99}
    out = producer(stack)
    begin = {"options": {"updateDuplicates": True}}
    send(out, topic, begin, sluice_batch="b-1", sluice_control="begin")
    out.flush()
    for seq, record in enumerate(records, 1):
        headers = {"sluice_batch": "b-1", "sluice_seq": str(seq)}
        send(out, topic, record, key=record["email"].lower(), **headers)
        if seq % 10 == 0:  # a producer retry: the same record again
            send(out, topic, record, key=record["email"].lower(), **headers)
    send(out, topic, {"count": len(records)}, sluice_batch="b-1", sluice_control="end")
    out.flush()
    ndjson = "".join(json.dumps(record) + "\n" for record in records).encode()
    via_http = stack.api_key(worker, "viahttp")
    status, accepted = http(
        "POST",
        f"{worker.url}/api/batch/jobs?type=user-import&updateDuplicates=true",
        ndjson,
        {"Content-Type": "application/x-ndjson"},
        key=via_http,
    )
    assert status == 202, accepted

    view = finished(stack, worker, "b-1")
    http_view = stack.wait_finished(worker, accepted["jobId"])
    valid = [r for r in records if "@" in r["email"]]
    want: dict[str, tuple[str, Any]] = {}
    for record in valid:
        want[record["email"].lower()] = (record["name"], record["age"])
    progress = view["progress"]
    assert view["status"] == "completed", view
    assert (progress["total"], progress["processed"]) == (len(records), len(records))
    assert (progress["successful"], progress["failed"]) == (len(valid), len(records) - len(valid))
    assert users(db, "default") == want == users(db, "viahttp")
    counts = ("total", "processed", "successful", "failed", "skipped")
    assert [progress[c] for c in counts] == [http_view["progress"][c] for c in counts]

    events = outcomes_of(stack.bootstrap_servers, f"{stack.app_id}.outcomes", view["jobId"])
    final = events[-1]
    assert (final["status"], final["batchId"], final["event"]) == ("completed", "b-1", "status")
    assert [final["counts"][c] for c in counts] == [progress[c] for c in counts]


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
    assert all(f"({topic}[0]@" in r["reason"] for r in page["items"]), page["items"]

    # the CLI finds the job by the producer's batch id
    shown = subprocess.run(
        [sys.executable, "-m", "api", "status", "--batch", "b-2", "--json"],
        cwd=REPO,
        env={**stack.env(), "SLUICE_API_URL": worker.url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["jobId"] == view["jobId"]


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
    assert view["status"] == "active"  # until its day is over (tests/e2e/test_standing_jobs.py)
    job = jobs[0]["jobId"]
    status, page = http("GET", f"{worker.url}/api/batch/jobs/{job}/results?status=failed")
    assert status == 200
    (failed,) = page["items"]
    assert failed["field"] == "email" and failed["row"] > 2**40  # named by where it was read
    status, groups = http("GET", f"{worker.url}/api/batch/jobs/{job}/errors")
    assert status == 200 and [g["count"] for g in groups["groups"]] == [1]


def test_http_and_topic_records_of_one_user_the_last_to_enter_wins(
    stack: Stack, db: Engine
) -> None:
    worker = stack.worker().wait_ready()
    topic = TOPIC.format(app=stack.app_id)
    out = producer(stack)

    def over_http(name: str) -> None:
        body = f"email,name\nann@example.com,{name}\n".encode()
        job = stack.submit_csv(worker, body, updateDuplicates="true")["jobId"]
        assert stack.wait_finished(worker, job)["status"] == "completed"

    def over_topic(batch: str, name: str) -> None:
        send(
            out,
            topic,
            {"options": {"updateDuplicates": True}},
            sluice_batch=batch,
            sluice_control="begin",
        )
        out.flush()
        record = {"email": "ann@example.com", "name": name}
        send(out, topic, record, key="ann@example.com", sluice_batch=batch, sluice_seq="1")
        send(out, topic, {"count": 1}, sluice_batch=batch, sluice_control="end")
        out.flush()
        assert finished(stack, worker, batch)["status"] == "completed"

    for step, (way, name) in enumerate(
        [
            (over_http, "Http 1"),
            (over_topic, "Topic 2"),
            (over_http, "Http 3"),
            (over_topic, "Topic 4"),
        ]
    ):
        if way is over_topic:
            over_topic(f"mixed-{step}", name)
        else:
            over_http(name)
        assert users(db) == {"ann@example.com": (name, None)}


def test_a_batch_produced_again_after_it_finished_is_answered_not_applied(
    stack: Stack, db: Engine
) -> None:
    worker = stack.worker().wait_ready()
    topic = TOPIC.format(app=stack.app_id)
    out = producer(stack)
    send(out, topic, {"email": "bo@example.com", "name": "Bo"}, sluice_batch="once", sluice_seq="1")
    send(out, topic, {"count": 1}, sluice_batch="once", sluice_control="end")
    out.flush()
    view = finished(stack, worker, "once")
    assert view["status"] == "completed"
    send(
        out,
        topic,
        {"email": "bo@example.com", "name": "Bo again"},
        sluice_batch="once",
        sluice_seq="2",
    )
    out.flush()

    deadline = time.monotonic() + 60
    consumer = outcome_consumer(stack.bootstrap_servers, f"{stack.app_id}.outcomes", view["jobId"])
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error() or message.key() != view["jobId"].encode():
                continue
            event = json.loads(message.value())
            if event["event"] == "batchReused":
                break
        else:
            raise AssertionError("no batchReused outcome event")
    finally:
        consumer.close()
    assert event["batchId"] == "once" and "new batch id" in event["error"]
    assert users(db) == {"bo@example.com": ("Bo", None)}
    status, again = http("GET", f"{worker.url}/api/batch/jobs/{view['jobId']}")
    assert status == 200 and again["progress"]["processed"] == 1


def test_an_upstream_batch_can_be_cancelled_like_any_job(stack: Stack, db: Engine) -> None:
    """Its chunks wait behind a lock on users; cancelled meanwhile, every record not applied is
    skipped, the counts still add up to the batch's end, and the job ends cancelled."""
    worker = stack.worker().wait_ready()
    topic = TOPIC.format(app=stack.app_id)
    out = producer(stack)
    with db.connect() as connection:
        blocking = connection.begin()
        connection.execute(text("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE"))
        for seq in range(1, 301):
            record = {"email": f"cx{seq}@example.com", "name": "X"}
            send(
                out, topic, record, key=record["email"], sluice_batch="stop-me", sluice_seq=str(seq)
            )
        send(out, topic, {"count": 300}, sluice_batch="stop-me", sluice_control="end")
        out.flush()
        job_id = job_of_batch(worker, "stop-me")["jobId"]
        status, answer = http("POST", f"{worker.url}/api/batch/jobs/{job_id}/cancel")
        assert status == 202, answer
        blocking.rollback()
    view = stack.wait_finished(worker, job_id)
    progress = view["progress"]
    assert view["status"] == "cancelled", view
    assert progress["processed"] == progress["total"] == 300
    assert progress["successful"] + progress["failed"] + progress["skipped"] == 300
    assert progress["skipped"] > 0
    assert len(users(db)) == progress["successful"]
