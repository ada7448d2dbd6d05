"""Requests the API must refuse: the right status, a message naming the problem, and no job."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, text

from tests.support.workers import Stack, Worker, http

CSV = b"email,name\r\nada@example.com,Ada\r\n"


def post(worker: Worker, query: str, body: bytes, content_type: str) -> tuple[int, Any]:
    return http(
        "POST", f"{worker.url}/api/batch/jobs?{query}", body, {"Content-Type": content_type}
    )


def post_json(worker: Worker, body: bytes) -> tuple[int, Any]:
    return post(worker, "", body, "application/json")


def jobs_in_registry(db: Engine) -> int:
    with db.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM sluice_jobs")).scalar_one()


def test_bad_requests_are_refused_without_creating_a_job(stack: Stack, db: Engine) -> None:
    worker = stack.worker().wait_ready()

    def refused(answer: tuple[int, Any], status: int) -> dict[str, Any]:
        got, payload = answer
        assert got == status, payload
        assert isinstance(payload, dict) and "error" in payload, payload
        return payload["error"]

    # a required column is missing
    error = refused(
        post(worker, "type=user-import", b"email\r\na@example.com\r\n", "text/csv"), 400
    )
    assert error["field"] == "name"
    assert "missing required column(s): name" in error["message"]

    # two duplicate modes at once
    error = refused(
        post(worker, "type=user-import&skipDuplicates=true&updateDuplicates=true", CSV, "text/csv"),
        400,
    )
    assert error["field"] == "updateDuplicates"
    assert "skipDuplicates" in error["message"]

    # an option out of range
    error = refused(post(worker, "type=user-import&chunkSize=50", CSV, "text/csv"), 400)
    assert error["field"] == "chunkSize"
    assert "between 100 and 10000" in error["message"]

    # an unknown option
    error = refused(post(worker, "type=user-import&chunk_size=500", CSV, "text/csv"), 400)
    assert error["field"] == "chunk_size"
    assert "not a known option" in error["message"]

    # an unknown job type, and none at all
    error = refused(post(worker, "type=user-delete", CSV, "text/csv"), 400)
    assert error["field"] == "type"
    assert "'user-delete'" in error["message"] and "user-import" in error["message"]
    error = refused(post(worker, "", CSV, "text/csv"), 400)
    assert error["field"] == "type"

    # a content type the API does not read
    error = refused(post(worker, "type=user-import", CSV, "text/plain"), 415)
    assert "text/plain" in error["message"]

    # an empty body
    error = refused(post(worker, "type=user-import", b"", "text/csv"), 400)
    assert "empty" in error["message"]
    error = refused(post(worker, "type=user-import", b"\r\n  \r\n", "text/csv"), 400)
    assert "empty" in error["message"]

    # inline JSON that is not JSON, or has nothing to import
    error = refused(post_json(worker, b'{"type": "user-import", "data": [}'), 400)
    assert "not valid JSON" in error["message"]
    error = refused(
        post_json(worker, json.dumps({"type": "user-import", "data": []}).encode()), 400
    )
    assert error["field"] == "data"
    assert "non-empty" in error["message"]
    body = json.dumps({"type": "user-import", "data": [{"email": "a@example.com", "name": "A"}]})
    error = refused(
        post_json(worker, body.replace('"data"', '"options": {"chunkSize": 5}, "data"').encode()),
        400,
    )
    assert error["field"] == "chunkSize"
    for odd_type in (["user-import"], {"name": "user-import"}):  # was a 500 (unhashable)
        odd = {"type": odd_type, "data": [{"email": "a@example.com", "name": "A"}]}
        error = refused(post_json(worker, json.dumps(odd).encode()), 400)
        assert error["field"] == "type"
        assert "user-import" in error["message"]

    # an unknown job
    error = refused(
        http("GET", f"{worker.url}/api/batch/jobs/00000000-0000-4000-8000-000000000000"), 404
    )
    assert "00000000-0000-4000-8000-000000000000" in error["message"]

    assert jobs_in_registry(db) == 0


def test_a_header_only_csv_is_a_job_with_no_records(stack: Stack, db: Engine) -> None:
    worker = stack.worker().wait_ready()
    accepted = stack.submit_csv(worker, b"email,name,country\r\n")
    assert (accepted["totalRecords"], accepted["totalChunks"]) == (0, 0)

    view = stack.wait_finished(worker, accepted["jobId"], timeout=60)
    assert view["status"] == "completed"
    assert view["progress"]["total"] == 0
    assert view["progress"]["processed"] == 0
    assert view["progress"]["percentage"] == 100.0
    assert view["completedAt"] is not None
    assert jobs_in_registry(db) == 1
