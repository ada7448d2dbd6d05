"""Upstream benchmark: the same generated users through the input topic and over HTTP, one run.

    .venv/bin/python -m tests.bench.bench_upstream [--rows 200000] [--partitions 8] [--writers 2]

One worker on the embedded broker and a fresh PostgreSQL schema, warmed up by a batch of 100.
(a) A confluent-kafka producer sends `begin`, then every record as one JSON message of a batch
(`sluice-batch`, `sluice-seq`), then `end`, onto `<app>.in.user-import`: records/s from the
first message produced to the job completed. (b) The same records as one NDJSON upload into an
emptied `users` table: records/s from the POST to the job completed. Both jobs' counts are
checked against the generated records.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import time
import urllib.parse
from typing import Any

from confluent_kafka import Producer
from sqlalchemy import text

from tests.bench.bench_import import (
    POLL_SECONDS,
    WorkerProcess,
    engine_for,
    http_json,
    rate,
    start_worker_stack,
)
from tests.bench.common import BenchFailure, run_bench

BATCH = "bench-batch"


def generate(rows: int, seed: int) -> tuple[list[dict[str, Any]], int]:
    """Records (about 2 % invalid) and how many are valid."""
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    for i in range(1, rows + 1):
        email = f"user{i}@example.com" if rng.random() > 0.02 else f"broken-{i}"
        records.append({"email": email, "name": f"User {i}", "age": rng.randint(13, 100)})
    return records, sum("@" in r["email"] for r in records)


def wait_completed(worker: WorkerProcess, job_id: str, started: float, timeout: float) -> Any:
    while True:
        worker.check_alive()
        status, view = http_json("GET", f"{worker.url}/api/batch/jobs/{job_id}", timeout=30)
        if status == 200 and view["status"] == "completed":
            return time.perf_counter() - started, view
        if status == 200 and view["status"] in ("failed", "cancelled"):
            raise BenchFailure(f"the job ended {view['status']}: {view}")
        if time.perf_counter() - started > timeout:
            raise BenchFailure(f"not completed after {timeout:g} s: {view}")
        time.sleep(POLL_SECONDS)


def through_topic(
    worker: WorkerProcess,
    servers: str,
    records: list[dict[str, Any]],
    timeout: float,
    batch: str = BATCH,
) -> tuple[float, Any]:
    out = Producer({"bootstrap.servers": servers, "linger.ms": 5, "batch.num.messages": 10000})
    topic = f"{worker.app_id}.in.user-import"
    started = time.perf_counter()
    # as docs/upstream.md asks: begin first, acknowledged, so no record waits for it
    begin = json.dumps({"options": {}}).encode()
    control = [("sluice-batch", batch.encode()), ("sluice-control", b"begin")]
    out.produce(topic, begin, headers=control)
    out.flush()
    for seq, record in enumerate(records, 1):
        headers = [("sluice-batch", batch.encode()), ("sluice-seq", str(seq).encode())]
        while True:
            try:
                out.produce(
                    topic, json.dumps(record).encode(), key=record["email"], headers=headers
                )
                break
            except BufferError:  # the producer's queue is full: let it send
                out.poll(0.05)
        out.poll(0)
    end = json.dumps({"count": len(records)}).encode()
    out.produce(topic, end, headers=[("sluice-batch", batch.encode()), ("sluice-control", b"end")])
    out.flush()
    query = urllib.parse.urlencode({"batchId": batch})
    while True:
        status, listing = http_json("GET", f"{worker.url}/api/batch/jobs?{query}", timeout=30)
        if status == 200 and listing["items"]:
            break
        time.sleep(POLL_SECONDS)
    return wait_completed(worker, listing["items"][0]["jobId"], started, timeout)


def warm_up(worker: WorkerProcess, servers: str, timeout: float) -> None:
    """A small batch first, as a running worker has had: its intake has joined its group and
    the HTTP run after it is as warm (the timed runs measure work, not start-up)."""
    records = [{"email": f"warm{i}@example.org", "name": "Warm"} for i in range(100)]
    through_topic(worker, servers, records, timeout, batch="warm-up")


def over_http(worker: WorkerProcess, records: list[dict[str, Any]], timeout: float) -> Any:
    body = "".join(json.dumps(r) + "\n" for r in records).encode()
    started = time.perf_counter()
    status, answer = http_json(
        "POST",
        f"{worker.url}/api/batch/jobs?type=user-import",
        body,
        {"Content-Type": "application/x-ndjson"},
        timeout=timeout,
    )
    if status != 202:
        raise BenchFailure(f"POST answered {status}: {answer}")
    return wait_completed(worker, answer["jobId"], started, timeout)


def check(view: Any, rows: int, valid: int, label: str) -> None:
    progress = view["progress"]
    if (progress["processed"], progress["successful"], progress["failed"]) != (
        rows,
        valid,
        rows - valid,
    ):
        raise BenchFailure(f"{label}: counts {progress} for {rows} records, {valid} valid")


def run(args: argparse.Namespace) -> dict[str, Any]:
    records, valid = generate(args.rows, args.seed)
    with contextlib.ExitStack() as stack:
        started = start_worker_stack(stack, args, "upstream")
        worker, servers, url = started.worker, started.bootstrap_servers, started.url
        warm_up(worker, servers, args.timeout)
        print(f"a. {args.rows:,} records through the input topic ...", flush=True)
        topic_seconds, topic_view = through_topic(worker, servers, records, args.timeout)
        check(topic_view, args.rows, valid, "input topic")
        with engine_for(url) as engine, engine.begin() as connection:
            connection.execute(text("TRUNCATE users"))
        print(f"b. the same {args.rows:,} records as one NDJSON upload ...", flush=True)
        http_seconds, http_view = over_http(worker, records, args.timeout)
        check(http_view, args.rows, valid, "HTTP")
        worker.stop()
    return {
        "rows": args.rows,
        "topic": {"seconds": topic_seconds, "recordsPerSecond": rate(args.rows, topic_seconds)},
        "http": {"seconds": http_seconds, "recordsPerSecond": rate(args.rows, http_seconds)},
    }


def report(results: dict[str, Any]) -> str:
    topic, over = results["topic"], results["http"]
    return (
        f"\nSluice upstream benchmark: {results['rows']:,} user records, 1 worker\n"
        f"input topic (produce → completed)   {topic['seconds']:7.2f} s  "
        f"{topic['recordsPerSecond']:>10,.0f} records/s\n"
        f"HTTP NDJSON (POST → completed)      {over['seconds']:7.2f} s  "
        f"{over['recordsPerSecond']:>10,.0f} records/s\n"
        f"input topic / HTTP: {topic['recordsPerSecond'] / over['recordsPerSecond']:.2f}×"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=900)
    return run_bench("upstream", parser.parse_args(), run, report)


if __name__ == "__main__":
    raise SystemExit(main())
