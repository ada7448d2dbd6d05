"""Imported data belongs to its tenant, through the API with two tenants' keys: alice and mallory
import overlapping emails; mallory's `updateDuplicates` import neither overwrites alice's rows
nor learns from its outcomes that she has them; each tenant's export holds its own users only."""

from __future__ import annotations

import gzip
import json
from typing import Any

from sqlalchemy import Engine, text

from tests.support.workers import Stack, Worker, http


def import_csv(stack: Stack, worker: Worker, key: str, body: str, **options: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"type": "user-import", **options}.items())
    status, answer = http(
        "POST",
        f"{worker.url}/api/batch/jobs?{query}",
        body.encode(),
        {"Content-Type": "text/csv"},
        key=key,
    )
    assert status == 202, answer
    view = stack.wait_finished(worker, answer["jobId"])
    assert view["status"] == "completed", view
    return str(answer["jobId"])


def exported(stack: Stack, worker: Worker, key: str) -> list[dict[str, Any]]:
    body = json.dumps({"type": "user-export", "options": {"format": "ndjson"}}).encode()
    status, answer = http(
        "POST", f"{worker.url}/api/batch/jobs", body, {"Content-Type": "application/json"}, key=key
    )
    assert status == 202, answer
    view = stack.wait_finished(worker, answer["jobId"])
    assert view["status"] == "completed", view
    status, data = http("GET", worker.url + view["result"]["downloadUrl"], key=None)
    assert status == 200
    return [json.loads(line) for line in gzip.decompress(data).decode().splitlines()]


def test_two_tenants_with_overlapping_emails_import_and_export_only_their_own(
    stack: Stack, db: Engine
) -> None:
    worker = stack.worker().wait_ready()
    alice = stack.api_key(worker, "alice")
    mallory = stack.api_key(worker, "mallory")

    import_csv(stack, worker, alice, "email,name\nann@example.com,Ann\nbob@example.com,Bob\n")
    probe = import_csv(
        stack,
        worker,
        mallory,
        "email,name\nANN@example.com,Mallory's Ann\ncarol@example.com,Carol\n",
        updateDuplicates="true",
    )

    # what mallory sees of her import: two new users, nothing updated (alice's Ann is invisible)
    status, view = http("GET", f"{worker.url}/api/batch/jobs/{probe}", key=mallory)
    assert status == 200
    assert (view["summary"]["created"], view["summary"]["updated"]) == (2, 0)
    status, page = http("GET", f"{worker.url}/api/batch/jobs/{probe}/results", key=mallory)
    assert status == 200
    assert [r["action"] for r in page["items"]] == ["created", "created"]

    with db.connect() as connection:
        rows = connection.execute(text("SELECT tenant, email, name FROM users ORDER BY 1, 2"))
        assert rows.all() == [
            ("alice", "ann@example.com", "Ann"),
            ("alice", "bob@example.com", "Bob"),
            ("mallory", "ann@example.com", "Mallory's Ann"),
            ("mallory", "carol@example.com", "Carol"),
        ]

    # (in id order; the ids follow the order each partition applied its chunk in)
    assert sorted((u["email"], u["name"]) for u in exported(stack, worker, alice)) == [
        ("ann@example.com", "Ann"),
        ("bob@example.com", "Bob"),
    ]
    assert sorted((u["email"], u["name"]) for u in exported(stack, worker, mallory)) == [
        ("ann@example.com", "Mallory's Ann"),
        ("carol@example.com", "Carol"),
    ]
