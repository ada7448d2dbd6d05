"""Avro on the input topic as an upstream team writes it, knowing only docs/upstream.md and the
published schema: a confluent-kafka producer encodes with fastavro itself (single-object
encoding, then Confluent framing against a small schema registry served here)."""

from __future__ import annotations

import io
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
from sqlalchemy import Engine

from tests.e2e.test_upstream import TOPIC, finished, producer, send, users
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
