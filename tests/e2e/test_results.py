"""Per-record results of a job: keyset pages, failed records as a file to fix and resubmit,
errors grouped, and the job listing. Real broker, workers, HTTP and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from tests.e2e.helpers import assert_job_matches, assert_table_matches, seed_existing
from tests.support.schemas import app_id, fresh_schema
from tests.support.users_data import Upload, expected, generate, stored_tuple
from tests.support.workers import REPO, TEST_API_KEY, Stack, Worker, bearer, http

TOTAL = 20_000
COLUMNS = ["email", "name", "country", "age", "signup_ts"]
FILE_HEADER = [*COLUMNS, "error_row", "error_field", "error_reason"]

# What each invalid value of users_data.INVALID_KINDS fails with (user_rules' first failure).
BAD_VALUES = {
    ("email", "no-at-sign.example.com"): "must contain exactly one @",
    ("email", "two@@example.com"): "must contain exactly one @",
    ("name", "   "): "is required",
    ("age", "abc"): "must be an integer",
    ("age", "42.5"): "must be an integer",
    ("age", "7"): "must be between 13 and 130",
    ("country", "DEU"): "must be two ASCII letters",
    ("signup_ts", "yesterday"): "not an ISO-8601 date-time",
}


def _why_invalid(values: dict[str, str]) -> tuple[str, str]:
    found = [(c, reason) for (c, bad), reason in BAD_VALUES.items() if values[c] == bad]
    assert len(found) == 1, values
    return found[0]


@dataclass
class MixedJob:
    stack: Stack
    worker: Worker
    db: Engine
    upload: Upload
    job_id: str
    view: dict[str, Any]
    want: dict[int, tuple[str, str | None, str | None]]  # row -> (status, field, reason)


@pytest.fixture(scope="module")
def mixed(
    kafka_bootstrap: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MixedJob]:
    """One 20,000-record skipDuplicates job with created, skipped and failed records, shared by
    the read-only tests of this module (its own schema and app id, like the `stack` fixture)."""
    with fresh_schema(database_url) as url_text:
        db = create_engine(url_text)
        stack = Stack(kafka_bootstrap, url_text, app_id(), tmp_path_factory.mktemp("mixed"))
        try:
            worker = stack.worker().wait_ready()
            upload = generate(TOTAL, seed=23, existing=300)
            seed_existing(db, upload)
            accepted = stack.submit_csv(worker, upload.csv_bytes(), skipDuplicates="true")
            started = time.monotonic()
            view = stack.wait_finished(worker, accepted["jobId"])
            print(f"\n20,000-record job finished in {time.monotonic() - started:.1f}s")
            model = expected(upload, "skip")
            assert_job_matches(view, model, total=TOTAL)
            assert_table_matches(db, model)
            assert model.successful and model.skipped and model.failed, model

            # the same contract, row by row: first valid occurrence of an identity is created,
            # later ones (and ones already in the table) skipped, invalid ones failed
            seen = set(upload.existing)
            want: dict[int, tuple[str, str | None, str | None]] = {}
            for row in upload.rows:
                if not row.valid:
                    want[row.number] = ("failed", *_why_invalid(row.values))
                elif row.identity in seen:
                    want[row.number] = ("skipped", None, "duplicate")
                else:
                    seen.add(row.identity)
                    want[row.number] = ("successful", None, None)
            yield MixedJob(stack, worker, db, upload, accepted["jobId"], view, want)
        finally:
            stack.stop_all()
            db.dispose()


def _walk(worker: Worker, job_id: str, **query: str) -> tuple[list[dict[str, Any]], int]:
    """Every item of a results walk following nextCursor, and how many pages it took."""
    items: list[dict[str, Any]] = []
    pages = 0
    cursor = None
    while True:
        params = dict(query, **({"cursor": cursor} if cursor else {}))
        qs = "&".join(f"{k}={v}" for k, v in params.items())
        status, answer = http("GET", f"{worker.url}/api/batch/jobs/{job_id}/results?{qs}")
        assert status == 200, answer
        pages += 1
        limit = int(query.get("limit", 100))
        assert len(answer["items"]) <= limit
        items.extend(answer["items"])
        cursor = answer["nextCursor"]
        if cursor is None:
            return items, pages
        assert len(answer["items"]) == limit  # only a full page may have a next one
        assert cursor == str(answer["items"][-1]["row"])


def _user_ids(db: Engine) -> dict[str, int]:
    with db.connect() as connection:
        return dict(connection.execute(text("SELECT email, id FROM users")).all())


def test_result_pages_cover_every_row_once(mixed: MixedJob) -> None:
    worker, job_id, want = mixed.worker, mixed.job_id, mixed.want
    progress = mixed.view["progress"]

    items, pages = _walk(worker, job_id, limit="1000")
    assert pages == TOTAL // 1000
    rows = [item["row"] for item in items]
    assert rows == list(range(1, TOTAL + 1))  # in row order, no gap, no repeat

    ids = _user_ids(mixed.db)
    identity = {row.number: row.identity for row in mixed.upload.rows}
    got_counts = Counter(item["status"] for item in items)
    assert got_counts == {
        "successful": progress["successful"],
        "failed": progress["failed"],
        "skipped": progress["skipped"],
    }
    for item in items:
        status, field, reason = want[item["row"]]
        assert (item["status"], item["field"], item["reason"]) == (status, field, reason), item
        if status == "successful":
            assert item["action"] == "created", item
            assert item["entityId"] == ids[identity[item["row"]]], item
        elif status == "skipped":
            assert item["action"] is None, item
            assert item["entityId"] == ids[identity[item["row"]]], item
        else:
            assert (item["action"], item["entityId"]) == (None, None), item

    # a sample checked straight against the table, by email
    created = [i for i in items if i["action"] == "created"]
    with mixed.db.connect() as connection:
        for item in created[:: max(1, len(created) // 50)]:
            email = identity[item["row"]]
            found = connection.execute(
                text("SELECT id, batch_job_id FROM users WHERE email = :e"), {"e": email}
            ).one()
            assert tuple(found) == (item["entityId"], job_id)

    by_status: dict[str, list[int]] = {}
    for status in ("failed", "skipped", "successful"):
        walked, pages = _walk(worker, job_id, status=status, limit="337")
        by_status[status] = [i["row"] for i in walked]
        assert all(i["status"] == status for i in walked)
        assert by_status[status] == sorted(set(by_status[status]))
        assert len(walked) == progress[status]
        assert pages == max(1, -(-len(walked) // 337))
        assert walked == [i for i in items if i["status"] == status]
    partition = sorted(r for rows in by_status.values() for r in rows)
    assert partition == list(range(1, TOTAL + 1))
    print(
        f"\nresults: {len(items)} rows in 20 pages; successful {len(by_status['successful'])}, "
        f"skipped {len(by_status['skipped'])}, failed {len(by_status['failed'])}"
    )

    # the last page exactly full: nextCursor is still null after it
    status, answer = http(
        "GET", f"{worker.url}/api/batch/jobs/{job_id}/results?limit=1000&cursor={TOTAL - 1000}"
    )
    assert status == 200 and len(answer["items"]) == 1000 and answer["nextCursor"] is None
    status, answer = http("GET", f"{worker.url}/api/batch/jobs/{job_id}/results?cursor={TOTAL}")
    assert (status, answer["items"], answer["nextCursor"]) == (200, [], None)
    status, answer = http("GET", f"{worker.url}/api/batch/jobs/{job_id}/results")
    assert status == 200 and [i["row"] for i in answer["items"]] == list(range(1, 101))
    assert answer["nextCursor"] == "100"

    base = f"{worker.url}/api/batch/jobs/{job_id}/results"
    # "²" and "١٠" are str.isdigit() but not ASCII integers ("²" made int() raise: a 500)
    for bad in ("0", "1001", "abc", "-1", "", "1.5", "%C2%B2", "%D9%A1%D9%A0"):
        status, answer = http("GET", f"{base}?limit={bad}")
        assert status == 400, (bad, answer)
        assert answer["error"]["field"] == "limit", answer
    for bad in ("created", "FAILED", "nope"):
        status, answer = http("GET", f"{base}?status={bad}")
        assert status == 400 and answer["error"]["field"] == "status", (bad, answer)
    for bad in ("abc", "-5", "%C2%B2"):
        status, answer = http("GET", f"{base}?cursor={bad}")
        assert status == 400 and answer["error"]["field"] == "cursor", (bad, answer)
    for path in ("results", "results.csv", "results.ndjson", "errors"):
        status, answer = http("GET", f"{worker.url}/api/batch/jobs/no-such-job/{path}")
        assert status == 404, (path, answer)


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=bearer(TEST_API_KEY))
    with urllib.request.urlopen(request, timeout=60) as answer:
        return answer.status, dict(answer.headers), answer.read()


def test_failed_records_file_round_trip(mixed: MixedJob, tmp_path: Path) -> None:
    worker, job_id = mixed.worker, mixed.job_id
    failed_rows = {r.number: r for r in mixed.upload.rows if not r.valid}
    assert len(failed_rows) == mixed.view["progress"]["failed"]

    status, headers, body = _get(f"{worker.url}/api/batch/jobs/{job_id}/results.csv")
    assert status == 200
    assert headers["Content-Type"] == "text/csv; charset=utf-8"
    assert headers["Content-Disposition"] == f'attachment; filename="{job_id}-failed.csv"'
    assert body == _get(f"{worker.url}/api/batch/jobs/{job_id}/results.csv?status=failed")[2]
    lines = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
    assert lines[0] == FILE_HEADER
    records = [dict(zip(FILE_HEADER, line, strict=True)) for line in lines[1:]]
    assert [int(r["error_row"]) for r in records] == sorted(failed_rows)
    for record in records:
        row = failed_rows[int(record["error_row"])]
        assert {c: record[c] for c in COLUMNS} == row.values, (record, row.values)
        assert (record["error_field"], record["error_reason"]) == _why_invalid(row.values)
    print(f"\nresults.csv: {len(records)} failed records, {len(body)} bytes")

    for bad in ("skipped", "successful", "nope"):
        for kind in ("csv", "ndjson"):
            code, answer = http(
                "GET", f"{worker.url}/api/batch/jobs/{job_id}/results.{kind}?status={bad}"
            )
            assert code == 400 and answer["error"]["field"] == "status", (kind, bad, answer)

    status, headers, ndjson = _get(f"{worker.url}/api/batch/jobs/{job_id}/results.ndjson")
    assert headers["Content-Type"].startswith("application/x-ndjson")
    parsed = [json.loads(line) for line in ndjson.decode("utf-8").splitlines()]
    assert len(parsed) == len(records)
    for line, record in zip(parsed, records, strict=True):
        assert line == {
            **{c: record[c] for c in COLUMNS},
            "error_row": int(record["error_row"]),
            "error_field": record["error_field"],
            "error_reason": record["error_reason"],
        }

    # the CLI writes the same bytes
    for name, wanted in (("failed.csv", body), ("failed.ndjson", ndjson)):
        out = tmp_path / name
        done = subprocess.run(
            [sys.executable, "-m", "api", "results", job_id, "--status", "failed", "-o", str(out)],
            cwd=REPO,
            env=mixed.stack.env(SLUICE_API_URL=worker.url),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert out.read_bytes() == wanted, name
    done = subprocess.run(
        [sys.executable, "-m", "api", "results", "no-such-job", "-o", str(tmp_path / "x.csv")],
        cwd=REPO,
        env=mixed.stack.env(SLUICE_API_URL=worker.url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 66 and "404" in done.stderr, done.stderr

    # fix every row (a new unique email, a valid value for the failing field), drop error_*
    fixes = {"age": "42", "country": "DE", "signup_ts": "2024-02-03T04:05:06"}
    fixed = []
    for record in records:
        number = int(record["error_row"])
        values = {c: record[c] for c in COLUMNS}
        values["email"] = f"fixed{number}@example.net"
        if record["error_field"] == "name":
            values["name"] = f"Fixed {number}"
        elif record["error_field"] in fixes:
            values[record["error_field"]] = fixes[record["error_field"]]
        fixed.append(values)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(fixed)
    before = len(_user_ids(mixed.db))
    accepted = mixed.stack.submit_csv(worker, out.getvalue().encode())
    view = mixed.stack.wait_finished(worker, accepted["jobId"])
    assert view["status"] == "completed", view
    progress = view["progress"]
    assert (progress["total"], progress["successful"], progress["failed"], progress["skipped"]) == (
        len(fixed),
        len(fixed),
        0,
        0,
    )
    assert view["summary"]["created"] == len(fixed)
    with mixed.db.connect() as connection:
        stored = connection.execute(
            text(
                "SELECT email, name, country, age, signup_ts FROM users "
                "WHERE email LIKE 'fixed%@example.net'"
            )
        ).all()
    got = {
        row.email: stored_tuple(
            {
                "email": row.email,
                "name": row.name,
                "country": row.country,
                "age": row.age,
                "signup_ts": row.signup_ts.isoformat() if row.signup_ts else None,
            }
        )
        for row in stored
    }
    assert got == {v["email"]: stored_tuple(v) for v in fixed}
    assert len(_user_ids(mixed.db)) == before + len(fixed)
    # the fixed job has nothing failed to download: just the header
    status, _, empty = _get(f"{worker.url}/api/batch/jobs/{accepted['jobId']}/results.csv")
    assert empty.decode() == ",".join(FILE_HEADER) + "\r\n"
    assert _get(f"{worker.url}/api/batch/jobs/{accepted['jobId']}/results.ndjson")[2] == b""


def test_errors_grouped(mixed: MixedJob) -> None:
    worker, job_id = mixed.worker, mixed.job_id
    status, answer = http("GET", f"{worker.url}/api/batch/jobs/{job_id}/errors")
    assert status == 200, answer
    assert answer["jobId"] == job_id
    groups = answer["groups"]

    failed, _ = _walk(worker, job_id, status="failed", limit="1000")
    rows_of: dict[tuple[str, str], list[int]] = {}
    for item in failed:
        rows_of.setdefault((item["field"], item["reason"]), []).append(item["row"])
    assert {(g["field"], g["reason"]): g["count"] for g in groups} == {
        k: len(v) for k, v in rows_of.items()
    }
    assert sum(g["count"] for g in groups) == mixed.view["progress"]["failed"]
    counts = [g["count"] for g in groups]
    assert counts == sorted(counts, reverse=True)  # most frequent first
    for group in groups:
        rows = rows_of[(group["field"], group["reason"])]
        sample = group["sampleRows"]
        assert len(sample) == min(5, group["count"]) == len(set(sample)), group
        assert set(sample) <= set(rows), group
        for row in sample:
            assert mixed.want[row] == ("failed", group["field"], group["reason"])
    # independently of the pipeline: the model's failures, grouped
    model = Counter((f, r) for s, f, r in mixed.want.values() if s == "failed")
    assert {(g["field"], g["reason"]): g["count"] for g in groups} == dict(model)
    summary = ", ".join(f"{g['field']}/{g['reason']}={g['count']}" for g in groups)
    print(f"\nerror groups: {summary}")


def _listing(worker: Worker, query: str = "", key: str = TEST_API_KEY) -> tuple[int, Any]:
    return http("GET", f"{worker.url}/api/batch/jobs?{query}", key=key)


def _walk_jobs(worker: Worker, query: str) -> tuple[list[dict[str, Any]], int]:
    items: list[dict[str, Any]] = []
    pages = 0
    cursor = ""
    while True:
        suffix = f"&cursor={urllib.parse.quote(cursor)}" if cursor else ""
        status, answer = _listing(worker, query + suffix)
        assert status == 200, answer
        pages += 1
        items.extend(answer["items"])
        cursor = answer["nextCursor"]
        if cursor is None:
            return items, pages


def _instant(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def test_job_listing(stack: Stack) -> None:
    worker = stack.worker().wait_ready()
    submitted = []
    for i in range(3):
        body = f"email,name\r\njob{i}a@example.com,A\r\njob{i}b@example.com,B\r\n".encode()
        submitted.append(stack.submit_csv(worker, body)["jobId"])
    newest_first = list(reversed(submitted))

    items, pages = _walk_jobs(worker, "limit=2")
    assert pages == 2
    assert [i["jobId"] for i in items] == newest_first
    created = [_instant(i["createdAt"]) for i in items]
    assert created == sorted(created, reverse=True)
    for item in items:
        assert item["type"] == "user-import"
        assert item["statusUrl"] == f"/api/batch/jobs/{item['jobId']}"

    views = {job: stack.wait_finished(worker, job) for job in submitted}
    # the registry's status follows the progress agent: allow it a moment
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        done, _ = _walk_jobs(worker, "status=completed&limit=2")
        if len(done) == 3:
            break
        time.sleep(0.2)
    assert [i["jobId"] for i in done] == newest_first, done
    for item in done:
        view = views[item["jobId"]]
        assert item["status"] == "completed"
        assert item["totalRecords"] == 2
        assert item["completedAt"] is not None
        assert _instant(item["completedAt"]) == _instant(view["completedAt"])
        assert _instant(item["expiresAt"]) == _instant(view["expiresAt"])
        assert _instant(item["expiresAt"]) - _instant(item["completedAt"]) == timedelta(days=7)
    for status in ("active", "failed", "queued", "cancelled"):
        assert _walk_jobs(worker, f"status={status}")[0] == []

    assert [i["jobId"] for i in _walk_jobs(worker, "type=user-import")[0]] == newest_first
    assert _walk_jobs(worker, "type=user-export")[0] == []
    status, answer = _listing(worker, "type=user-import&status=completed&limit=1000")
    assert [i["jobId"] for i in answer["items"]] == newest_first
    assert answer["nextCursor"] is None
    # the test key is an admin's: it names a tenant to list; a tenant's key lists its own
    someone = stack.api_key(worker, "someone-else", "read")
    status, answer = _listing(worker, "", key=someone)
    assert (status, answer["items"], answer["nextCursor"]) == (200, [], None)
    status, answer = _listing(worker, "tenant=default")
    assert [i["jobId"] for i in answer["items"]] == newest_first

    # a job submitted for another tenant is listed for that tenant only
    acme = stack.api_key(worker, "acme", "submit", "read")
    code, theirs = http(
        "POST",
        f"{worker.url}/api/batch/jobs?type=user-import",
        b"email,name\r\nacme@example.com,A\r\n",
        {"Content-Type": "text/csv"},
        key=acme,
    )
    assert code == 202, theirs
    for key, query in ((acme, ""), (acme, "tenant=acme"), (TEST_API_KEY, "tenant=acme")):
        status, answer = _listing(worker, query, key=key)
        assert [i["jobId"] for i in answer["items"]] == [theirs["jobId"]], (query, answer)
    status, answer = _listing(worker, "tenant=default")
    assert [i["jobId"] for i in answer["items"]] == newest_first
    status, answer = _listing(worker, "tenant=default", key=acme)
    assert status == 403 and answer["error"]["code"] == "forbidden", answer
    status, answer = _listing(worker, "tenant=no%20spaces")
    assert status == 400 and answer["error"]["field"] == "tenant", answer

    for query, field in (
        ("type=nope", "type"),
        ("status=done", "status"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=abc", "limit"),
        ("limit=%C2%B2", "limit"),
        ("cursor=garbage", "cursor"),
    ):
        status, answer = _listing(worker, query)
        assert status == 400 and answer["error"]["field"] == field, (query, answer)
