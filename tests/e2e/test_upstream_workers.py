"""Upstream work with two workers, one of them killed (kill -9) while it reads the input topic:
the other takes its input partitions over and the batch completes, every record counted once."""

from __future__ import annotations

import time

from sqlalchemy import Engine, text

from tests.e2e.test_upstream import TOPIC, job_of_batch, producer, send
from tests.support.workers import Stack, http

RECORDS = 30_000


def test_a_worker_killed_while_reading_an_input_topic_loses_and_repeats_nothing(
    stack: Stack, db: Engine
) -> None:
    # small chunks and one writer each: the first worker is killed as soon as a chunk is
    # counted, while the intake of both is still reading
    slow = {"SLUICE_WRITERS": "1"}
    first = stack.worker(None, **slow).wait_ready()
    second = stack.worker(None, **slow).wait_ready()
    topic = TOPIC.format(app=stack.app_id)
    out = producer(stack)
    send(out, topic, {"options": {"chunkSize": 100}}, sluice_batch="crash", sluice_control="begin")
    out.flush()
    for seq in range(1, RECORDS + 1):
        record = {"email": f"crash{seq}@example.com", "name": f"Crash {seq}", "age": seq % 80 + 20}
        send(out, topic, record, key=record["email"], sluice_batch="crash", sluice_seq=str(seq))
        if seq % 10 == 0:  # every 10th record produced twice, as a retrying producer does
            send(out, topic, record, key=record["email"], sluice_batch="crash", sluice_seq=str(seq))
    send(out, topic, {"count": RECORDS}, sluice_batch="crash", sluice_control="end")
    out.flush()

    job = job_of_batch(second, "crash")["jobId"]
    deadline = time.monotonic() + 120
    processed = 0
    while time.monotonic() < deadline and processed == 0:
        _, view = http("GET", f"{second.url}/api/batch/jobs/{job}")
        processed = view.get("progress", {}).get("processed", 0)
        time.sleep(0.05)
    assert 0 < processed < RECORDS, processed
    first.kill()

    view = stack.wait_finished(second, job, timeout=300)
    progress = view["progress"]
    assert view["status"] == "completed", view
    assert (progress["total"], progress["successful"], progress["failed"]) == (RECORDS, RECORDS, 0)
    with db.connect() as connection:
        rows = connection.execute(
            text("SELECT count(*), count(DISTINCT email) FROM users WHERE email LIKE 'crash%'")
        ).one()
        results = connection.execute(
            text(
                "SELECT count(*), count(*) FILTER (WHERE outcome = 'created') "
                "FROM sluice_results WHERE job_id = :j"
            ),
            {"j": job},
        ).one()
    assert tuple(rows) == (RECORDS, RECORDS)
    assert tuple(results) == (RECORDS, RECORDS)  # each record once, none "updated" by a repeat
