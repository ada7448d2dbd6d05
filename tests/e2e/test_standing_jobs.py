"""Standing jobs close after their day, as an upstream team sees it: a confluent-kafka producer
sends records without `sluice-batch`, timestamped in a past UTC day and today, to two workers
with a short SLUICE_STANDING_GRACE (docs/upstream.md, "Standing jobs"). The records are in the
topic before the workers start, so none of them can be late."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic
from sqlalchemy import Engine

from streams.intake.messages import job_id_of
from tests.e2e.test_outcomes import outcomes_of
from tests.e2e.test_upstream import TOPIC, producer, send, users
from tests.support.kafka_io import PARTITIONS
from tests.support.workers import Stack, Worker, http

COUNTS = ("total", "processed", "successful", "failed", "skipped")


def noon_of(day: datetime) -> int:
    return int(day.replace(hour=12, minute=0, second=0, microsecond=0).timestamp() * 1000)


def view_of(worker: Worker, job_id: str) -> dict[str, Any]:
    status, view = http("GET", f"{worker.url}/api/batch/jobs/{job_id}")
    assert status == 200, view
    return dict(view)


def wait_for(worker: Worker, job_id: str, want: Any, what: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, view = http("GET", f"{worker.url}/api/batch/jobs/{job_id}")
        if status == 200 and want(view):
            return dict(view)
        time.sleep(0.5)
    raise AssertionError(f"job {job_id}: {what} not seen; last answer {view}")


def test_yesterdays_standing_job_completes_exactly_and_a_late_record_reopens_it(
    stack: Stack, db: Engine
) -> None:
    topic = TOPIC.format(app=stack.app_id)
    admin = AdminClient({"bootstrap.servers": stack.bootstrap_servers})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(timeout=30)
    now = datetime.now(UTC)
    past_day = now - timedelta(days=2)  # well away from midnight, whenever the test runs
    past_ms = noon_of(past_day)
    past_job = job_id_of("default", "user-import", None, past_day.date().isoformat())
    today_job = job_id_of("default", "user-import", None, now.date().isoformat())

    out = producer(stack)
    past = [{"email": f"past{i}@example.com", "name": f"Past {i}"} for i in range(1, 401)]
    for i in range(0, len(past), 50):
        past[i] = {"email": f"broken-{i}", "name": "Broken"}  # fails alone
    for seq, record in enumerate(past, 1):
        for _ in range(2 if seq % 10 == 0 else 1):  # a producer retry: the same seq again
            send(out, topic, record, key=record["email"], timestamp=past_ms, sluice_seq=str(seq))
    for i in range(1, 31):
        record = {"email": f"today{i}@example.com", "name": f"Today {i}"}
        send(out, topic, record, key=record["email"])
    out.flush()
    first = stack.worker(SLUICE_STANDING_GRACE="2").wait_ready()
    second = stack.worker(SLUICE_STANDING_GRACE="2").wait_ready()

    closed = stack.wait_finished(first, past_job)
    progress = closed["progress"]
    assert closed["status"] == "completed", closed
    assert [progress[c] for c in COUNTS] == [400, 400, 392, 8, 0]
    today = wait_for(first, today_job, lambda v: v["progress"]["processed"] == 30, "30 records")
    assert today["status"] == "active" and today["progress"]["total"] is None  # its day goes on
    # the owner answers for both (totalChunks may have come from the registry since)
    answered = view_of(second, past_job)["progress"]
    assert [answered[c] for c in COUNTS] == [progress[c] for c in COUNTS]

    # one worker goes; a record of the past day comes late, through the one left
    first.stop()
    send(out, topic, {"email": "late@example.com", "name": "Late"}, timestamp=past_ms)
    out.flush()
    events = outcomes_of(
        stack.bootstrap_servers, f"{stack.app_id}.outcomes", past_job, timeout=120, finals=2
    )
    assert [e["status"] for e in events][-3:] == ["completed", "active", "completed"]
    for before, after in itertools.pairwise(events):
        assert after["previousStatus"] == before["status"] != after["status"]
    finals = [e["counts"] for e in events if e["final"]]
    assert [[f[c] for c in COUNTS] for f in finals] == [
        [400, 400, 392, 8, 0],
        [401, 401, 393, 8, 0],
    ]
    reopened = [e for e in events if e["status"] == "active"][-1]
    assert reopened["counts"]["total"] is None and not reopened["final"]
    again = wait_for(
        second, past_job, lambda v: v["progress"]["total"] == 401, "completed again with 401"
    )
    assert [again["progress"][c] for c in COUNTS] == [401, 401, 393, 8, 0]
    assert view_of(second, today_job)["status"] == "active"
    valid = {r["email"] for r in past if "@" in r["email"]}
    assert valid | {"late@example.com"} <= set(users(db))
