"""What docs/upstream.md promises an upstream batch beyond getting in: retention, dead letters
and replay exactly as an HTTP job's, and a job that completes whatever order its `begin`,
records and `end` are read in. The producer is confluent-kafka (librdkafka) and knows only the
contract; expectations are built here from the records produced."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from confluent_kafka import Producer
from sqlalchemy import Engine, text

from tests.e2e.test_outcomes import outcome_consumer, poll_until
from tests.e2e.test_replay import RAISING, TRIGGER
from tests.e2e.test_retention import _instant, _kept, _until_removed
from tests.e2e.test_upstream import TOPIC, finished, job_of_batch, producer, send, users
from tests.support.workers import Stack, Worker, http

FINAL = ("completed", "failed", "cancelled")
COUNTS = ("total", "processed", "successful", "failed", "skipped")


# -- helpers --------------------------------------------------------------------------------------


def _batch(
    out: Producer,
    topic: str,
    batch: str,
    records: list[dict[str, Any]],
    tenant: str = "default",
    partition: Callable[[int], int | None] = lambda seq: None,
    first_seq: int = 1,
) -> None:
    """`records` of a batch, keyed by identity, numbered from `first_seq`."""
    for seq, record in enumerate(records, first_seq):
        headers = {"sluice_batch": batch, "sluice_seq": str(seq), "sluice_tenant": tenant}
        key = record["email"].lower()
        send(out, topic, record, key=key, partition=partition(seq), **headers)


def _control(out: Producer, topic: str, batch: str, kind: str, value: Any, **extra: Any) -> None:
    tenant = extra.pop("tenant", "default")
    send(out, topic, value, sluice_batch=batch, sluice_control=kind, sluice_tenant=tenant, **extra)


def _counts(view: dict[str, Any]) -> list[int]:
    return [view["progress"][name] for name in COUNTS]


def _listed(worker: Worker, batch: str) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"batchId": batch})
    status, listing = http("GET", f"{worker.url}/api/batch/jobs?{query}")
    assert status == 200, listing
    return list(listing["items"])


def _counted(worker: Worker, batch: str, records: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = _listed(worker, batch)
        if listed:
            _, view = http("GET", f"{worker.url}/api/batch/jobs/{listed[0]['jobId']}")
            if view["progress"]["processed"] == records:
                return
        time.sleep(0.25)
    raise AssertionError(f"batch {batch!r}: {records} records not counted in {timeout} s")


def _seed(db: Engine, emails: list[str], tenant: str = "default") -> None:
    with db.begin() as connection:
        for email in emails:
            connection.execute(
                text("INSERT INTO users (tenant, email, name) VALUES (:t, :e, 'Existing')"),
                {"t": tenant, "e": email},
            )


def _read_until(
    servers: str, topic: str, done: Callable[[list[Any]], bool], timeout: float = 60
) -> list[Any]:
    """Messages of `topic` from its beginning (a group of its own) until `done` says so."""
    seen: list[Any] = []

    def take(message: Any) -> bool:
        seen.append(message)
        return done(seen)

    consumer = outcome_consumer(servers, topic, f"lifecycle-reader-{time.monotonic_ns()}")
    if not poll_until(consumer, take, timeout):
        raise AssertionError(f"{topic}: not there within {timeout} s ({len(seen)} messages read)")
    return seen


def _events_until(
    stack: Stack, job_id: str, done: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    """The job's outcome events, in order, until `done` says so."""

    def of_job(messages: list[Any]) -> list[dict[str, Any]]:
        return [json.loads(m.value()) for m in messages if m.key() == job_id.encode()]

    topic = f"{stack.app_id}.outcomes"
    return of_job(_read_until(stack.bootstrap_servers, topic, lambda seen: done(of_job(seen))))


def _dlq(worker: Worker, key: str | None = None, **query: str) -> list[dict[str, Any]]:
    """Dead letters as `key` sees them (default: the tests' admin key)."""
    url = f"{worker.url}/api/batch/dlq?{urllib.parse.urlencode(query)}"
    status, answer = http("GET", url, **({} if key is None else {"key": key}))
    assert status == 200, answer
    return list(answer["items"])


def _replay_done(worker: Worker, job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    view: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status, view = http("GET", f"{worker.url}/api/batch/jobs/{job_id}")
        assert status == 200, view
        if view["status"] in FINAL and view["summary"]["deadLetteredChunks"] == 0:
            return view
        time.sleep(0.25)
    raise AssertionError(f"the replay of {job_id} did not end: {view}\n{worker.tail(40)}")


# -- retention ------------------------------------------------------------------------------------


def test_retention_removes_a_finished_upstream_job_as_an_http_one_and_keeps_unfinished_ones(
    stack: Stack, db: Engine
) -> None:
    """A completed batch's results, error groups and failed-records file go when it expires,
    as those of the same records submitted over HTTP; a batch still open (no end yet) and a
    failed one (kept longer) stay, and the listing by batch id says so."""
    worker = stack.worker(
        SLUICE_RETAIN_COMPLETED_SECONDS="8",
        SLUICE_RETAIN_FAILED_SECONDS="3600",
        SLUICE_RETENTION_INTERVAL="1",
        SLUICE_BATCH_WAIT="1",
    ).wait_ready()
    topic = TOPIC.format(app=stack.app_id)
    out = producer(stack)
    _batch(out, topic, "open", [{"email": f"open{i}@example.com", "name": "O"} for i in range(5)])
    _batch(out, topic, "too-many", [{"email": f"x{i}@example.com", "name": "X"} for i in range(3)])
    out.flush()
    _counted(worker, "too-many", 3)  # an end read sooner may complete the job with any two
    _control(out, topic, "too-many", "end", {"count": 2})
    out.flush()
    failing = finished(stack, worker, "too-many")
    assert failing["status"] == "failed", failing
    opened = job_of_batch(worker, "open")
    assert opened["status"] in ("queued", "active") and opened["expiresAt"] is None, opened

    def records_of(prefix: str) -> list[dict[str, Any]]:
        records = [{"email": f"{prefix}{i}@example.com", "name": f"K {i}"} for i in range(300)]
        for i in (10, 20, 30):
            records[i] = {"email": f"broken-{i}", "name": "Broken"}
        records[299] = dict(records[0])  # the same user again: skipped
        return records

    _control(out, topic, "done", "begin", {"options": {"skipDuplicates": True}})
    out.flush()
    _batch(out, topic, "done", records_of("topic"))
    _control(out, topic, "done", "end", {"count": 300})
    out.flush()
    body = "".join(json.dumps(r) + "\n" for r in records_of("http")).encode()
    via_http = stack.submit(worker, body, "application/x-ndjson", skipDuplicates="true")

    views = {"topic": finished(stack, worker, "done")}
    views["http"] = stack.wait_finished(worker, via_http["jobId"])
    for way, view in views.items():
        job = view["jobId"]
        kept = _kept(db, job)  # at once: it expires 8 s after it completed
        status, groups = http("GET", f"{worker.url}/api/batch/jobs/{job}/errors")
        csv_url = f"{worker.url}/api/batch/jobs/{job}/results.csv?status=failed"
        status_csv, failed_csv = http("GET", csv_url)
        assert (view["status"], _counts(view)) == ("completed", [300, 300, 296, 3, 1]), way
        assert _instant(view["expiresAt"]) - _instant(view["completedAt"]) == timedelta(seconds=8)
        assert kept == {"results": 300, "chunks": kept["chunks"], "jobs": 1, "users": 296}, way
        assert status == 200 and sum(g["count"] for g in groups["groups"]) == 3, groups
        assert status_csv == 200 and len(failed_csv.decode().splitlines()) == 1 + 3, failed_csv

    for way, view in views.items():
        job = view["jobId"]
        _until_removed(db, worker, job, view, stays=[opened["jobId"], failing["jobId"]])
        assert _kept(db, job) == {"results": 0, "chunks": 0, "jobs": 0, "users": 296}, way
        for path in ("", "/results", "/results.csv", "/errors"):
            code, _ = http("GET", f"{worker.url}/api/batch/jobs/{job}{path}")
            assert code == 404, (way, path)
    assert _listed(worker, "done") == []
    assert [i["jobId"] for i in _listed(worker, "open")] == [opened["jobId"]]
    assert [i["status"] for i in _listed(worker, "too-many")] == ["failed"]
    assert _kept(db, opened["jobId"])["results"] == 5
    assert _kept(db, failing["jobId"])["jobs"] == 1

    # the batch produced again after its job was removed: answered, not applied
    removed = views["topic"]["jobId"]
    _batch(out, topic, "done", [{"email": "topic1@example.com", "name": "Again"}], first_seq=301)
    _control(out, topic, "done", "end", {"count": 301})
    out.flush()
    reused = _events_until(
        stack, removed, lambda events: bool(events) and events[-1]["event"] == "batchReused"
    )
    assert (reused[-1]["status"], reused[-1]["batchId"]) == ("removed", "done"), reused[-1]
    assert _listed(worker, "done") == []
    assert users(db)["topic1@example.com"][0] == "K 1"
    assert _kept(db, removed) == {"results": 0, "chunks": 0, "jobs": 0, "users": 296}


# -- dead letters and replay ----------------------------------------------------------------------


def test_an_upstream_batchs_dead_letters_are_its_tenants_and_replay_to_completed(
    stack: Stack, db: Engine
) -> None:
    """Chunks holding a "boom" name fail in PostgreSQL (a trigger, as tests/e2e/test_replay.py
    does it) and, with retryAttempts=0 from the batch's begin, are dead-lettered at once. Only
    the batch's tenant (and an admin) sees them; replayed once the trigger is gone, the job
    completes again with every record accounted for."""
    worker = stack.worker(SLUICE_UPSTREAM_TENANTS="default,acme").wait_ready()
    with db.begin() as connection:
        connection.execute(text(RAISING))
        connection.execute(text(TRIGGER))
    acme = stack.api_key(worker, "acme", "read", "dlq")
    other = stack.api_key(worker, "default", "read", "dlq")
    topic = TOPIC.format(app=stack.app_id)
    records = [{"email": f"dl{i}@example.com", "name": f"Dl {i}"} for i in range(1, 601)]
    for i in (49, 249, 449):
        records[i]["name"] = f"boom {i + 1}"
    for i in (99, 299):
        records[i] = {"email": f"broken-{i + 1}", "name": "Broken"}
    records[599] = dict(records[0])  # the same user again: skipped
    out = producer(stack)
    options = {"chunkSize": 100, "retryAttempts": 0, "skipDuplicates": True}
    _control(out, topic, "dl-1", "begin", {"options": options}, tenant="acme")
    out.flush()
    _batch(out, topic, "dl-1", records, tenant="acme")
    _control(out, topic, "dl-1", "end", {"count": len(records)}, tenant="acme")
    out.flush()

    job_id = job_of_batch(worker, "dl-1")["jobId"]
    before = stack.wait_finished(worker, job_id)
    assert before["status"] == "completed", before
    assert before["summary"]["deadLettered"] > 0 and before["summary"]["deadLetteredChunks"] > 0
    progress = before["progress"]
    assert progress["successful"] + progress["failed"] + progress["skipped"] == 600, before
    assert progress["failed"] >= before["summary"]["deadLettered"], before

    # the batch's tenant sees its dead letters; another tenant sees none; an admin sees them
    items = _dlq(worker, acme, job=job_id)
    assert len(items) == before["summary"]["deadLetteredChunks"], items
    assert all(i["jobId"] == job_id and "boom row" in i["errorMessage"] for i in items), items
    assert all(i["source"]["topic"] == f"{stack.app_id}.chunks" for i in items), items
    assert {i["id"] for i in _dlq(worker, tenant="acme")} == {i["id"] for i in items}
    assert _dlq(worker, other, job=job_id) == [] and _dlq(worker, other) == []
    status, _ = http("GET", f"{worker.url}/api/batch/dlq/{items[0]['id']}", key=other)
    assert status == 404
    status, shown = http("GET", f"{worker.url}/api/batch/dlq/{items[0]['id']}", key=acme)
    assert status == 200 and shown["chunk"]["jobId"] == job_id, shown

    with db.begin() as connection:
        connection.execute(text("DROP TRIGGER users_boom ON users"))
    status, replayed = http(
        "POST",
        f"{worker.url}/api/batch/dlq/replay",
        json.dumps({"job": job_id}).encode(),
        {"Content-Type": "application/json"},
        key=acme,
    )
    assert status == 200, replayed
    assert (replayed["matched"], replayed["replayed"]) == (len(items), len(items)), replayed

    after = _replay_done(worker, job_id)
    valid = [r for r in records[:599] if "@" in r["email"]]
    assert after["status"] == "completed", after
    assert _counts(after) == [600, 600, len(valid), 2, 1], after
    assert after["summary"]["deadLettered"] == 0, after
    assert users(db, "acme") == {r["email"]: (r["name"], None) for r in valid}
    assert users(db, "default") == {}
    assert _dlq(worker, acme, job=job_id) == []

    want = dict(zip(COUNTS, _counts(after), strict=True))

    def ends_replayed(events: list[dict[str, Any]]) -> bool:
        return bool(events) and events[-1]["final"] and events[-1]["counts"]["deadLettered"] == 0

    events = _events_until(stack, job_id, ends_replayed)
    first_final = next(e for e in events if e["final"])
    assert first_final["counts"]["deadLettered"] == before["summary"]["deadLettered"]
    assert "active" in [e["status"] for e in events[events.index(first_final) :]]
    last = events[-1]
    assert (last["status"], last["batchId"], last["tenant"]) == ("completed", "dl-1", "acme")
    assert {name: last["counts"][name] for name in COUNTS} == want


# -- whatever order begin, records and end are read in -------------------------------------------


def _existing_and_new(prefix: str, existing: int, new: int) -> list[dict[str, Any]]:
    return [
        {"email": f"{prefix}{i}@example.com", "name": f"{prefix.title()} {i}"}
        for i in range(existing + new)
    ]


def test_end_then_records_then_begin_completes_with_the_begins_options(
    stack: Stack, db: Engine
) -> None:
    """On one partition, read in that order; the begin's updateDuplicates shows in the three
    existing users it updates (by default they would fail as duplicates)."""
    worker = stack.worker(SLUICE_BATCH_WAIT="120").wait_ready()
    records = _existing_and_new("late", 3, 17)
    _seed(db, [r["email"] for r in records[:3]])
    topic = TOPIC.format(app=stack.app_id)
    out = producer(stack)
    _control(out, topic, "backwards", "end", {"count": len(records)}, partition=0)
    out.flush()
    _batch(out, topic, "backwards", records, partition=lambda seq: 0)
    out.flush()
    _control(out, topic, "backwards", "begin", {"options": {"updateDuplicates": True}}, partition=0)
    out.flush()

    view = finished(stack, worker, "backwards")
    assert (view["status"], _counts(view)) == ("completed", [20, 20, 20, 0, 0]), view
    assert (view["summary"]["created"], view["summary"]["updated"]) == (17, 3), view
    assert users(db) == {r["email"]: (r["name"], None) for r in records}


def test_begin_records_and_end_on_different_partitions_in_scrambled_order(
    stack: Stack, db: Engine
) -> None:
    """Records on partitions 1-3 (an identity keeps its partition), the end on 2 between two
    runs of them, the begin last, on 0: skipDuplicates from the begin skips the existing users
    and the second record of each identity produced twice."""
    worker = stack.worker(SLUICE_BATCH_WAIT="120").wait_ready()
    records = _existing_and_new("mix", 4, 26)
    records += [dict(r) for r in records[10:15]]  # the same five users again
    _seed(db, [r["email"] for r in records[:4]])
    topic = TOPIC.format(app=stack.app_id)

    def partition(seq: int) -> int:
        return 1 + int(records[seq - 1]["email"][3:].split("@")[0]) % 3

    out = producer(stack)
    _batch(out, topic, "mixed", records[:12], partition=partition)
    _control(out, topic, "mixed", "end", {"count": len(records)}, partition=2)
    _batch(out, topic, "mixed", records[12:], partition=partition, first_seq=13)
    _control(out, topic, "mixed", "begin", {"options": {"skipDuplicates": True}}, partition=0)
    out.flush()

    view = finished(stack, worker, "mixed")
    assert (view["status"], _counts(view)) == ("completed", [35, 35, 26, 0, 9]), view
    want = {r["email"]: (r["name"], None) for r in records[4:]}
    want.update({r["email"]: ("Existing", None) for r in records[:4]})
    assert users(db) == want


def test_a_begin_read_after_the_batch_wait_is_refused_and_the_batch_keeps_its_defaults(
    stack: Stack, db: Engine
) -> None:
    """Records first; once the batch has opened with the defaults (it is listed), a begin with
    updateDuplicates goes to `<topic>.dlq` saying why; the existing users fail as duplicates."""
    worker = stack.worker(SLUICE_BATCH_WAIT="1").wait_ready()
    records = _existing_and_new("slow", 2, 8)
    _seed(db, [r["email"] for r in records[:2]])
    topic = TOPIC.format(app=stack.app_id)
    out = producer(stack)
    _batch(out, topic, "tardy", records)
    out.flush()
    job_id = job_of_batch(worker, "tardy")["jobId"]  # opened: with the default options
    begin = {"options": {"updateDuplicates": True}}
    _control(out, topic, "tardy", "begin", begin)
    _control(out, topic, "tardy", "end", {"count": len(records)})
    out.flush()

    refused = _read_until(
        stack.bootstrap_servers,
        f"{topic}.dlq",
        lambda seen: bool(seen) and json.loads(seen[-1].value()) == begin,
    )[-1]
    headers = {name: value.decode() for name, value in refused.headers()}
    assert headers["sluice-source-topic"] == topic and headers["sluice-error-class"] == "Refused"
    reason = headers["sluice-error-message"]
    assert "'tardy' already opened with other options" in reason, reason
    assert "SLUICE_BATCH_WAIT=1 s" in reason and "produce begin before the records" in reason

    view = stack.wait_finished(worker, job_id)
    assert (view["status"], _counts(view)) == ("completed", [10, 10, 8, 2, 0]), view
    status, page = http("GET", f"{worker.url}/api/batch/jobs/{job_id}/results?status=failed")
    assert status == 200 and [(r["row"], r["reason"]) for r in page["items"]] == [
        (1, "duplicate"),
        (2, "duplicate"),
    ], page
    want = {r["email"]: (r["name"], None) for r in records[2:]}
    want.update({r["email"]: ("Existing", None) for r in records[:2]})
    assert users(db) == want
