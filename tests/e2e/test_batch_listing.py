"""Finding the jobs an input topic's producer batch became: `GET /api/batch/jobs?batchId=`,
under the listing's tenant rules; each item says its batch and origin, and the status of such a
job (registered, nothing processed yet) shows its batch. Real broker, worker, HTTP and
PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine

from streams.sink import jobs as job_registry
from tests.support.workers import TEST_API_KEY, Stack, Worker, http

BATCH = "Lieferung 2024/07 — №42 ✓"
OPTIONS = {"chunkSize": 100, "validate": True, "stopOnError": False}


def _by_batch(worker: Worker, batch: str, key: str = TEST_API_KEY, extra: str = "") -> Any:
    return http("GET", f"{worker.url}/api/batch/jobs?batchId={quote(batch)}{extra}", key=key)


def _topic_job(db: Engine, tenant: str, batch: str = BATCH) -> str:
    job_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant}/user-import/{batch}"))
    assert job_registry.ensure_job(db, job_id, tenant, "user-import", OPTIONS, batch)
    return job_id


def test_jobs_are_found_by_batch_id(stack: Stack, db: Engine) -> None:
    worker = stack.worker().wait_ready()
    submitted = stack.submit_csv(worker, b"email,name\r\nada@example.com,Ada\r\n")["jobId"]
    mine, bobs = _topic_job(db, "default"), _topic_job(db, "bob")
    _topic_job(db, "default", "another batch")

    # the admin key of the default tenant: every tenant's, or the one it names
    status, answer = _by_batch(worker, BATCH)
    assert status == 200, answer
    assert {i["jobId"] for i in answer["items"]} == {mine, bobs}
    status, answer = _by_batch(worker, BATCH, extra="&tenant=default")
    assert [i["jobId"] for i in answer["items"]] == [mine], answer
    item = answer["items"][0]
    assert (item["batchId"], item["origin"], item["type"]) == (BATCH, "topic", "user-import")
    # registered, nothing processed yet: queued, no totals
    assert (item["status"], item["totalRecords"], item["completedAt"]) == ("queued", None, None)

    # a tenant's own key sees its own only; another tenant's key sees none of it
    bob = stack.api_key(worker, "bob", "read")
    status, answer = _by_batch(worker, BATCH, key=bob)
    assert [i["jobId"] for i in answer["items"]] == [bobs], answer
    alice = stack.api_key(worker, "alice")
    status, answer = _by_batch(worker, BATCH, key=alice)
    assert (status, answer["items"]) == (200, []), answer
    status, answer = _by_batch(worker, BATCH, key=alice, extra="&tenant=default")
    assert status == 403, answer

    # API jobs say so, with no batch
    status, answer = http("GET", f"{worker.url}/api/batch/jobs?tenant=default")
    listed = {i["jobId"]: i for i in answer["items"]}
    assert (listed[submitted]["origin"], listed[submitted]["batchId"]) == ("api", None)
    assert listed[mine]["origin"] == "topic"
    assert _by_batch(worker, "no such batch")[1]["items"] == []

    # the status of a registered topic job shows its batch
    status, view = http("GET", f"{worker.url}/api/batch/jobs/{mine}")
    assert status == 200, view
    assert (view["status"], view["batchId"]) == ("queued", BATCH)
    status, view = http("GET", f"{worker.url}/api/batch/jobs/{submitted}")
    assert status == 200 and view["batchId"] is None, view


def test_a_batch_id_is_1_to_200_characters(stack: Stack, db: Engine) -> None:
    worker = stack.worker().wait_ready()
    longest = "ü" * 200  # characters, not bytes
    job_id = _topic_job(db, "default", longest)
    status, answer = _by_batch(worker, longest)
    assert [i["jobId"] for i in answer["items"]] == [job_id], answer
    for batch in ("x" * 201, "ü" * 201):
        status, answer = _by_batch(worker, batch)
        assert status == 400 and answer["error"]["field"] == "batchId", answer
        assert "batchId" in answer["error"]["message"]
    status, answer = http("GET", f"{worker.url}/api/batch/jobs?batchId=")
    assert status == 400 and answer["error"]["field"] == "batchId", answer
    status, answer = _by_batch(worker, "nul\x00inside")
    assert (status, answer["items"]) == (200, []), answer
