"""What a careless or hostile client sends, answered as a 4xx that names the problem (a JSON body
`{error: {code, message, field?}}` that shows nothing of the inside), never a 5xx or a crash;
and a record that cannot be stored fails alone. One worker with small limits serves them all."""

from __future__ import annotations

import gzip
import json
import socket
import time
import uuid
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from tests.support.schemas import app_id, fresh_schema
from tests.support.workers import TEST_API_KEY, Stack, Worker, http

LIMITS = {
    "SLUICE_MAX_UPLOAD_BYTES": "2000000",
    "SLUICE_MAX_COLUMNS": "20",
    "SLUICE_MAX_FORM_PARTS": "8",
    "SLUICE_MAX_FIELD_BYTES": "1024",
    "SLUICE_BODY_TIMEOUT": "5",
    "SLUICE_HEADER_TIMEOUT": "3",
}
LEAKS = ("Traceback", "postgresql://", "/work/", "site-packages", "SELECT ", "psycopg2")


@pytest.fixture(scope="module")
def served(
    kafka_bootstrap: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, Worker, Engine]]:
    with fresh_schema(database_url) as schema_url:
        stack = Stack(kafka_bootstrap, schema_url, app_id(), tmp_path_factory.mktemp("hostile"))
        db = create_engine(schema_url)
        try:
            yield stack, stack.worker(None, **LIMITS).wait_ready(), db
        finally:
            stack.stop_all()
            db.dispose()


def refused(answer: tuple[int, Any], status: int, *words: str) -> dict[str, Any]:
    """The answer is `status` with a JSON error body naming `words`, and nothing inside."""
    got, body = answer
    assert got == status, (got, body)
    assert isinstance(body, dict) and set(body["error"]) >= {"code", "message"}, body
    text_of = json.dumps(body["error"])
    assert not [leak for leak in LEAKS if leak in text_of], body
    for word in words:
        assert word in body["error"]["message"], body
    return body["error"]


def post(worker: Worker, query: str, body: bytes, **headers: str) -> tuple[int, Any]:
    headers.setdefault("Content-Type", "text/csv")
    return http("POST", f"{worker.url}/api/batch/jobs?{query}", body, headers)


def csv_of(rows: int, *, extra: str = "") -> bytes:
    lines = ["email,name"] + [
        f"u{i}-{uuid.uuid4().hex[:6]}@example.com,User {i}" for i in range(rows)
    ]
    return ("\r\n".join(lines) + "\r\n" + extra).encode()


def finished(stack: Stack, worker: Worker, accepted: dict[str, Any]) -> dict[str, Any]:
    return stack.wait_finished(worker, accepted["jobId"], timeout=120)


def test_an_inline_batch_past_one_read_is_taken_whole(served: tuple[Stack, Worker, Engine]) -> None:
    stack, worker, _ = served
    data = [{"email": f"big{i}@example.com", "name": "n" * 40} for i in range(20_000)]
    body = json.dumps({"type": "user-import", "data": data}).encode()
    assert len(body) > 1_000_000
    status, accepted = http(
        "POST", f"{worker.url}/api/batch/jobs", body, {"Content-Type": "application/json"}
    )
    assert status == 202, accepted
    assert finished(stack, worker, accepted)["progress"]["successful"] == 20_000


def test_json_nested_too_deep_is_a_400(served: tuple[Stack, Worker, Engine]) -> None:
    _, worker, _ = served
    body = b'{"type": "user-import", "data": [' + b"[" * 10_000 + b"]" * 10_000 + b"]}"
    answer = http(
        "POST", f"{worker.url}/api/batch/jobs", body, {"Content-Type": "application/json"}
    )
    refused(answer, 400, "deeper than")


def test_a_record_with_a_nul_byte_fails_alone(served: tuple[Stack, Worker, Engine]) -> None:
    stack, worker, _ = served
    body = csv_of(250, extra="nul@example.com,Bad\x00Name\r\n")
    status, accepted = post(worker, "type=user-import", body)
    assert status == 202, accepted
    view = finished(stack, worker, accepted)
    progress, summary = view["progress"], view["summary"]
    assert (progress["successful"], progress["failed"], summary["deadLettered"]) == (250, 1, 0)
    assert summary["errors"] == [
        {"row": 251, "field": "name", "reason": "contains a NUL character"}
    ]


def test_the_failed_records_file_does_not_run_formulas(
    served: tuple[Stack, Worker, Engine],
) -> None:
    stack, worker, _ = served
    body = b'email,name\r\n=HYPERLINK("http://x"),=1+1\r\n'
    status, accepted = post(worker, "type=user-import", body)
    assert status == 202
    finished(stack, worker, accepted)
    status, data = http("GET", f"{worker.url}/api/batch/jobs/{accepted['jobId']}/results.csv")
    assert status == 200
    assert "'=HYPERLINK" in data.decode() and "'=1+1" in data.decode()


def test_compressed_uploads_are_inflated_within_the_limit(
    served: tuple[Stack, Worker, Engine],
) -> None:
    stack, worker, _ = served
    for encoding, compress in (("gzip", gzip.compress), ("deflate", zlib.compress)):
        status, accepted = post(
            worker, "type=user-import", compress(csv_of(100)), **{"Content-Encoding": encoding}
        )
        assert status == 202, accepted
        assert finished(stack, worker, accepted)["progress"]["successful"] == 100
    bomb = gzip.compress(b"email,name\r\n" + b"a" * 50_000_000)
    refused(post(worker, "type=user-import", bomb, **{"Content-Encoding": "gzip"}), 413, "bytes")
    garbage = post(worker, "type=user-import", b"\x01" * 500, **{"Content-Encoding": "deflate"})
    refused(garbage, 400, "cannot be inflated")
    refused(post(worker, "type=user-import", b"x", **{"Content-Encoding": "br"}), 415, "br")


def test_an_upload_that_breaks_off_imports_nothing_more(
    served: tuple[Stack, Worker, Engine],
) -> None:
    """Past the byte limit the upload is refused after chunks were produced: the job ends
    failed, and every chunk not applied yet is skipped, not imported behind that status."""
    _, worker, db = served
    before = {row[0] for row in _jobs(db)}
    refused(post(worker, "type=user-import&chunkSize=100", csv_of(60_000)), 413, "bytes")
    (job_id,) = {row[0] for row in _jobs(db)} - before
    deadline = time.monotonic() + 60
    while (view := http("GET", f"{worker.url}/api/batch/jobs/{job_id}")[1])["status"] != "failed":
        assert time.monotonic() < deadline, view
        time.sleep(0.2)
    time.sleep(2)  # a chunk in its transaction when the mark was set may still commit
    imported = _imported(db, job_id)
    time.sleep(5)
    assert _imported(db, job_id) == imported  # nothing more
    assert imported < 60_000


def _jobs(db: Engine) -> list[Any]:
    with db.connect() as connection:
        return connection.execute(text("SELECT id FROM sluice_jobs")).all()


def _imported(db: Engine, job_id: str) -> int:
    with db.connect() as connection:
        query = text("SELECT count(*) FROM users WHERE batch_job_id = :j")
        return connection.execute(query, {"j": job_id}).scalar_one()


def test_forms_past_their_limits_or_broken_are_4xx(served: tuple[Stack, Worker, Engine]) -> None:
    _, worker, _ = served

    def form(parts: list[tuple[str, bytes]], boundary: str = "b0undary") -> tuple[int, Any]:
        body = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value
            + b"\r\n"
            for name, value in parts
        )
        content_type = f"multipart/form-data; boundary={boundary}"
        return post(
            worker, "", body + f"--{boundary}--\r\n".encode(), **{"Content-Type": content_type}
        )

    refused(form([(f"o{i}", b"1") for i in range(20)]), 413, "SLUICE_MAX_FORM_PARTS")
    refused(form([("type", b"x" * 5000)]), 413, "SLUICE_MAX_FIELD_BYTES")
    broken = post(
        worker, "", b"--other\r\ngarbage", **{"Content-Type": "multipart/form-data; boundary=b"}
    )
    assert broken[0] == 400, broken
    # a part header holding bytes no header may (a control character): found by Schemathesis
    bad_header = form([("o\x17p", b"1"), ("file", b"email,name\r\n")])
    refused(bad_header, 400, "the multipart form cannot be read")


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/api/batch/jobs/x%00y", None, 404),
        ("GET", "/api/batch/jobs/" + "9" * 5000, None, 404),
        (
            "GET",
            "/api/batch/jobs/00000000-0000-4000-8000-000000000000/results?cursor=" + "9" * 5000,
            None,
            404,
        ),
        ("GET", "/api/batch/dlq?since=" + "9" * 5000 + "s", None, 400),
        ("GET", "/api/batch/dlq/app.chunks.dlq:" + "9" * 5000 + ":1", None, 400),
        ("POST", "/api/batch/dlq/replay", b"\xff\xfe\x00garbage", 400),
        ("POST", "/api/batch/dlq/replay", b'{"rate": 1e-300}', 400),
        (
            "POST",
            "/api/batch/jobs?type=user-import&chunkSize=%D9%A3%D9%A0%D9%A0",
            b"email,name\r\n",
            400,
        ),
        ("POST", "/api/batch/jobs?type=user-import&chunkSize=1_000", b"email,name\r\n", 400),
        ("DELETE", "/api/batch/dlq", None, 405),
    ],
)
def test_odd_requests_get_a_4xx_in_json(
    served: tuple[Stack, Worker, Engine], method: str, path: str, body: bytes | None, status: int
) -> None:
    _, worker, _ = served
    headers = {"Content-Type": "text/csv" if "jobs?" in path else "application/json"}
    refused(http(method, worker.url + path, body, headers), status)


def test_too_many_columns_are_refused(
    served: tuple[Stack, Worker, Engine],
) -> None:
    stack, worker, _ = served
    wide = ",".join(["email", "name", *(f"c{i}" for i in range(30))]).encode() + b"\r\n"
    refused(post(worker, "type=user-import", wide), 400, "SLUICE_MAX_COLUMNS")
    ndjson = json.dumps({"email": "w@example.com", "name": "W", **{f"k{i}": i for i in range(18)}})
    status, accepted = post(
        worker,
        "type=user-import",
        ndjson.encode() + b"\n",
        **{"Content-Type": "application/x-ndjson"},
    )
    assert status == 202
    view = finished(stack, worker, accepted)
    assert view["progress"]["successful"] == 1 and len(view["summary"]["unknownColumns"]) == 18


def _answer_to_a_slow_client(worker: Worker, sent: bytes, wait: float) -> tuple[bytes, float]:
    """Send `sent`, then nothing; what the server answers (b"": it closed) and when."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", worker.port), timeout=wait) as connection:
        connection.sendall(sent)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer, time.monotonic() - started


def test_slow_clients_meet_header_and_body_timeouts(served: tuple[Stack, Worker, Engine]) -> None:
    _, worker, _ = served
    # headers that never end (one at a time, as a slowloris would): closed, without an answer
    answer, took = _answer_to_a_slow_client(
        worker, b"GET /api/health HTTP/1.1\r\nHost: sluice\r\nX-Slow: 1\r\n", wait=20
    )
    assert answer == b"" and 2.5 <= took <= 10, (answer, took)
    # a body that stops coming: a 408 in JSON
    head = (
        b"POST /api/batch/jobs?type=user-import HTTP/1.1\r\nHost: sluice\r\n"
        b"Authorization: Bearer " + TEST_API_KEY.encode() + b"\r\n"
        b"Content-Type: text/csv\r\nContent-Length: 100000\r\n\r\nemail,name\r\n"
    )
    answer, took = _answer_to_a_slow_client(worker, head, wait=30)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"request_timeout"' in answer and 4.5 <= took <= 20, (answer[-300:], took)
    # the worker answers everyone else meanwhile and after
    assert http("GET", f"{worker.url}/api/health")[0] == 200
