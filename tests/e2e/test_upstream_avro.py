"""Avro on the input topic as an upstream team writes it, knowing only docs/upstream.md and the
published schema: a confluent-kafka producer encodes with fastavro itself (single-object
encoding, then Confluent framing against a small schema registry served here); the outcome
events come back in the form the batch chose, read by a consumer as docs/upstream.md shows."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form
from sqlalchemy import Engine, text

from tests.e2e.test_outcomes import counts_of, outcome_messages_of
from tests.e2e.test_upstream import TOPIC, finished, job_of_batch, producer, send, users
from tests.support.kafka_io import eventually, read_topic
from tests.support.workers import Stack, Worker, http

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas" / "records" / "user.v1.avsc"
USER_V1 = json.loads(SCHEMA_FILE.read_text())


def avro_body(schema: Any, record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    schemaless_writer(out, parse_schema(schema), record)
    return out.getvalue()


def single_object(record: dict[str, Any]) -> bytes:
    parsed = parse_schema(USER_V1)
    hex_le = fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO")  # little-endian
    fp = int.from_bytes(bytes.fromhex(hex_le), "little")
    return b"\xc3\x01" + fp.to_bytes(8, "little") + avro_body(USER_V1, record)


def records(prefix: str, n: int) -> list[dict[str, Any]]:
    made = [
        {
            "email": f"{prefix}{i}@Example.com",
            "name": f"{prefix} {i}",
            "country": "de" if i % 2 else None,
            "age": 20 + i % 50 if i % 3 else None,
            "signup_ts": "2024-05-01T10:00:00Z" if i % 5 else None,
        }
        for i in range(1, n + 1)
    ]
    made[6]["email"] = "not-an-email"  # fails the job type's rules, alone
    return made


def expected(sent: list[dict[str, Any]]) -> dict[str, tuple[str, Any]]:
    return {r["email"].lower(): (r["name"], r["age"]) for r in sent if "@" in r["email"]}


def ended_with_two_failures(
    stack: Stack,
    worker: Worker,
    db: Engine,
    out: Any,
    topic: str,
    batch: str,
    sent: list[dict[str, Any]],
) -> dict[int, str]:
    """End the batch (its records and one unreadable value sent), wait for its job, check it
    applied every readable valid record; the failed records' reasons by row."""
    send(out, topic, {"count": len(sent) + 1}, sluice_batch=batch, sluice_control="end")
    out.flush()
    view = finished(stack, worker, batch)
    progress = view["progress"]
    assert view["status"] == "completed", view
    assert (progress["successful"], progress["failed"]) == (len(sent) - 1, 2)
    assert users(db) == expected(sent)
    status, page = http("GET", f"{worker.url}/api/batch/jobs/{view['jobId']}/results?status=failed")
    assert status == 200
    reasons = {r["row"]: r["reason"] for r in page["items"]}
    assert set(reasons) == {7, len(sent) + 1}
    return reasons


def test_single_object_avro_records_make_a_batch(stack: Stack, db: Engine) -> None:
    worker = stack.worker().wait_ready()
    topic = TOPIC.format(app=stack.app_id)
    sent = records("avro", 300)
    out = producer(stack)
    for seq, record in enumerate(sent, 1):
        value = single_object(record)
        send(
            out, topic, value, key=record["email"].lower(), sluice_batch="a-1", sluice_seq=str(seq)
        )
    unknown = b"\xc3\x01" + (7).to_bytes(8, "little") + avro_body(USER_V1, sent[0])
    send(out, topic, unknown, sluice_batch="a-1", sluice_seq=str(len(sent) + 1))
    reasons = ended_with_two_failures(stack, worker, db, out, topic, "a-1", sent)
    assert "unknown Avro schema fingerprint" in reasons[len(sent) + 1], reasons
    assert "user.v1" in reasons[len(sent) + 1]


OTHER = {  # a team's own schema, registered in its registry: other name, other order
    "type": "record",
    "name": "Customer",
    "namespace": "com.acme",
    "fields": [
        {"name": "name", "type": "string"},
        {"name": "email", "type": "string"},
        {"name": "age", "type": ["null", "int"], "default": None},
    ],
}
REGISTERED = {11: USER_V1, 12: OTHER}


class _Registry(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        prefix = "/schemas/ids/"
        tail = self.path[len(prefix) :] if self.path.startswith(prefix) else ""
        schema = REGISTERED.get(int(tail)) if tail.isdigit() else None
        if schema is None:
            self.send_response(404)
            answer = {"error_code": 40403, "message": "Schema not found"}
        else:
            self.send_response(200)
            answer = {"schema": json.dumps(schema)}
        body = json.dumps(answer).encode()
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def registry_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def framed(schema_id: int, record: dict[str, Any]) -> bytes:
    return struct.pack(">bI", 0, schema_id) + avro_body(REGISTERED[schema_id], record)


def test_confluent_framed_records_read_through_the_registry(
    stack: Stack, db: Engine, registry_url: str
) -> None:
    worker = stack.worker(SLUICE_SCHEMA_REGISTRY_URL=registry_url).wait_ready()
    topic = TOPIC.format(app=stack.app_id)
    sent = records("framed", 200)
    out = producer(stack)
    for seq, record in enumerate(sent, 1):
        if seq % 2:
            value = framed(11, record)
        else:
            value = framed(12, {k: record[k] for k in ("name", "email", "age")})
        send(
            out, topic, value, key=record["email"].lower(), sluice_batch="c-1", sluice_seq=str(seq)
        )
    unknown_id = struct.pack(">bI", 0, 99) + avro_body(USER_V1, sent[0])
    send(out, topic, unknown_id, sluice_batch="c-1", sluice_seq=str(len(sent) + 1))
    reasons = ended_with_two_failures(stack, worker, db, out, topic, "c-1", sent)
    assert "schema id 99" in reasons[len(sent) + 1] and "404" in reasons[len(sent) + 1]


def batch_of(out: Any, topic: str, batch: str, values: list[bytes], **begin: str) -> None:
    """A batch as docs/upstream.md has it: begin (acknowledged first), records, end."""
    send(out, topic, {"options": {}}, sluice_batch=batch, sluice_control="begin", **begin)
    out.flush()
    for seq, value in enumerate(values, 1):
        send(out, topic, value, sluice_batch=batch, sluice_seq=str(seq))
    send(out, topic, {"count": len(values)}, sluice_batch=batch, sluice_control="end")
    out.flush()


def outcomes_in(stack: Stack, job_id: str, form: str, **until: Any) -> list[dict[str, Any]]:
    """The job's outcome events, each one checked to be in `form` by its bytes and its header."""
    topic = f"{stack.app_id}.outcomes"
    found = outcome_messages_of(stack.bootstrap_servers, topic, job_id, **until)
    assert {(got, named) for got, named, _ in found} == {(form, form)}, found
    return [event for _, _, event in found]


def told_in_order(events: list[dict[str, Any]], view: dict[str, Any]) -> None:
    """Each status change once, in order, the last one final with the status API's counts."""
    first = events[0]
    assert (first["status"], first["previousStatus"]) in {("queued", None), ("active", "queued")}
    for before, after in itertools.pairwise(events):
        assert after["previousStatus"] == before["status"] != after["status"]
    final = events[-1]
    assert (final["event"], final["status"], final["final"]) == ("status", "completed", True)
    assert final["counts"] == counts_of(view)


def test_an_avro_batch_gets_avro_outcomes_and_a_json_batch_json(stack: Stack, db: Engine) -> None:
    """Neither begin names a form: each batch's records choose it. A batch produced again after
    it finished is answered in its form too."""
    worker = stack.worker().wait_ready()
    topic = TOPIC.format(app=stack.app_id)
    out = producer(stack)
    avro = records("ao", 300)
    plain = [{"email": f"jo{i}@example.com", "name": f"Jo {i}"} for i in range(1, 51)]
    batch_of(out, topic, "ao-1", [single_object(r) for r in avro])
    batch_of(out, topic, "jo-1", [json.dumps(r).encode() for r in plain])
    avro_view, json_view = finished(stack, worker, "ao-1"), finished(stack, worker, "jo-1")
    assert (avro_view["progress"]["successful"], avro_view["progress"]["failed"]) == (299, 1)
    assert json_view["progress"]["successful"] == 50

    events = outcomes_in(stack, avro_view["jobId"], "avro")
    told_in_order(events, avro_view)
    assert {e["batchId"] for e in events} == {"ao-1"}
    told_in_order(outcomes_in(stack, json_view["jobId"], "json"), json_view)

    again = {**avro[0], "name": "Again"}
    send(out, topic, single_object(again), sluice_batch="ao-1", sluice_seq="301")
    out.flush()
    reused = outcomes_in(
        stack, avro_view["jobId"], "avro", until=lambda e: e["event"] == "batchReused"
    )[-1]
    assert (reused["batchId"], reused["counts"]) == ("ao-1", None)
    assert "new batch id" in reused["error"]


def test_a_form_named_on_begin_wins_over_the_records(stack: Stack) -> None:
    """A begin naming Avro gets Avro events for JSON records, from the first (`queued`) on; one
    naming JSON gets JSON for Avro records."""
    worker = stack.worker().wait_ready()
    topic = TOPIC.format(app=stack.app_id)
    out = producer(stack)
    plain = [json.dumps({"email": f"na{i}@example.com", "name": "Na"}).encode() for i in range(20)]
    batch_of(out, topic, "named-avro", plain, sluice_outcome_format="avro")
    avro = [single_object(r) for r in records("nj", 20)]
    batch_of(out, topic, "named-json", avro, sluice_outcome_format="json")
    for batch, form in (("named-avro", "avro"), ("named-json", "json")):
        view = finished(stack, worker, batch)
        events = outcomes_in(stack, view["jobId"], form)
        assert (events[0]["status"], events[0]["previousStatus"]) == ("queued", None)
        told_in_order(events, view)


def registry_status(db: Engine, job_id: str) -> str | None:
    with db.connect() as connection:
        found = connection.execute(
            text("SELECT status FROM sluice_jobs WHERE id = :id"), {"id": job_id}
        )
        return found.scalar()


def test_a_plain_begin_leaves_the_form_to_the_records_and_a_late_one_cannot_change_it(
    stack: Stack, db: Engine
) -> None:
    """A begin naming no form, told `queued` before any record is read: that status is not
    sent (no form is chosen yet); the Avro records that follow choose Avro, from `active` on.
    Records read SLUICE_BATCH_WAIT before their begin choose too: a begin naming another form
    is refused then (a dead letter saying why), and the batch stays Avro."""
    worker = stack.worker(SLUICE_BATCH_WAIT="1").wait_ready()
    topic = TOPIC.format(app=stack.app_id)
    out = producer(stack)
    send(out, topic, {"options": {}}, sluice_batch="late", sluice_control="begin")
    out.flush()
    late = job_of_batch(worker, "late")["jobId"]
    # the registry's status follows the folded state, written after its outcome was decided
    eventually(lambda: registry_status(db, late), "the queued status folded", timeout=60)
    values = [single_object(record) for record in records("late", 30)]
    for seq, value in enumerate(values, 1):
        send(out, topic, value, sluice_batch="late", sluice_seq=str(seq))
    send(out, topic, {"count": len(values)}, sluice_batch="late", sluice_control="end")
    out.flush()
    events = outcomes_in(stack, late, "avro")
    assert (events[0]["status"], events[0]["previousStatus"]) == ("active", "queued")
    told_in_order(events, stack.wait_finished(worker, late))

    for seq, value in enumerate(values[:5], 1):
        send(out, topic, value, sluice_batch="early", sluice_seq=str(seq))
    out.flush()
    early = job_of_batch(worker, "early")["jobId"]  # opened by its records, once they waited
    json_begin = {"sluice_control": "begin", "sluice_outcome_format": "json"}
    send(out, topic, {"options": {}}, sluice_batch="early", **json_begin)
    out.flush()
    dead = asyncio.run(
        read_topic(
            stack.bootstrap_servers,
            f"{topic}.dlq",
            lambda r: b"outcome events as avro" in dict(r.headers)["sluice-error-message"],
            timeout=60,
        )
    )
    assert dict(dead.headers)["sluice-source-topic"] == topic.encode()
    send(out, topic, {"count": 5}, sluice_batch="early", sluice_control="end")
    out.flush()
    told_in_order(outcomes_in(stack, early, "avro"), stack.wait_finished(worker, early))
