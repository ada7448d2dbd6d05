"""user-export from request to downloaded file: real broker, workers, PostgreSQL and HTTP.

One module-wide worker exports 80,000 of 100,000 seeded users (a filter on every field) in each
format; the files are decompressed, parsed and compared, in order, with the same rows read
straight from PostgreSQL. Two workers share another export; signed URLs are checked for
expiry and tampering; bad requests are refused naming the field.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from api.paths import download_url
from streams.access import DEFAULT_TENANT
from streams.exports.signing import signature
from tests.support.schemas import app_id, fresh_schema
from tests.support.workers import REPO, Stack, Worker, http

SEEDED = 100_000
MATCHING = 80_000
KEY = "e2e-signing-key-" + "0123456789abcdef"
FILTER = {
    "country": "de",
    "signupFrom": "2020-01-01T00:00:00Z",
    "signupTo": "2025-01-01T00:00:00Z",
    "ageMin": 18,
    "ageMax": 65,
}
FILTER_SQL = (
    "country = 'DE' AND age BETWEEN 18 AND 65 AND signup_ts >= '2020-01-01T00:00:00Z' "
    "AND signup_ts < '2025-01-01T00:00:00Z'"
)
COLUMNS = "id, email, name, country, age, signup_ts, created_at, updated_at"

# Users 1..n. Every fifth one misses the filter on exactly one field, in turn (a wrong or
# missing country, an age just outside or missing, a signup just outside or missing, the
# exclusive upper bound itself); the others match, some exactly on the lower bounds. Names and
# emails carry what CSV must quote or neutralize.
SEED_SQL = """
INSERT INTO users (email, name, country, age, signup_ts, created_at, updated_at)
SELECT
    CASE WHEN i % 13 = 0 THEN '-user' ELSE 'user' END || i || '@example.com',
    CASE i % 12
        WHEN 0 THEN '=HYPERLINK("http://evil.example/' || i || '")'
        WHEN 1 THEN 'Doe, Jane ' || i
        WHEN 2 THEN 'Jo "JJ" Smith ' || i
        WHEN 3 THEN E'Multi\\nLine ' || i
        WHEN 4 THEN '+' || i
        WHEN 5 THEN '-' || i || ' minus'
        WHEN 6 THEN '@' || i
        WHEN 7 THEN E'\\ttab ' || i
        WHEN 8 THEN 'Zoë Ünïcødé ' || i
        WHEN 9 THEN E'\\rcr ' || i
        WHEN 10 THEN 'Semi;colon ''quote'' ' || i
        ELSE 'Name ' || i
    END,
    CASE WHEN i % 5 = 0 AND (i / 5) % 8 = 0 THEN 'US'
         WHEN i % 5 = 0 AND (i / 5) % 8 = 1 THEN NULL
         ELSE 'DE' END,
    CASE WHEN i % 5 = 0 AND (i / 5) % 8 = 2 THEN 17
         WHEN i % 5 = 0 AND (i / 5) % 8 = 3 THEN NULL
         WHEN i % 5 = 0 AND (i / 5) % 8 = 4 THEN 66
         ELSE 18 + i % 48 END,
    CASE WHEN i % 5 = 0 AND (i / 5) % 8 = 5 THEN timestamptz '2019-12-31 23:59:59.999999+00'
         WHEN i % 5 = 0 AND (i / 5) % 8 = 6 THEN NULL
         WHEN i % 5 = 0 AND (i / 5) % 8 = 7 THEN timestamptz '2025-01-01 00:00:00+00'
         WHEN i % 1000 = 1 THEN timestamptz '2020-01-01 00:00:00+00'
         ELSE timestamptz '2020-01-01 00:00:00+00'
              + ((i::bigint * 7919) % 157679999) * interval '1 second'
              + (i % 1000) * interval '1 millisecond' END,
    timestamptz '2023-01-01 00:00:00+00' + i * interval '1 second' + i * interval '1 microsecond',
    timestamptz '2023-06-01 00:00:00+02' + i * interval '1 second'
FROM generate_series(1, :n) AS i
"""

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def signed_url(job_id: str, name: str, expires: int) -> str:
    signed = signature(KEY.encode(), DEFAULT_TENANT, job_id, name, expires)
    return download_url(job_id, name, expires, signed)


def seed(db: Engine, n: int) -> None:
    with db.begin() as connection:
        connection.execute(text(SEED_SQL), {"n": n})


def expected_rows(db: Engine, where: str = "TRUE") -> list[tuple[Any, ...]]:
    with db.connect() as connection:
        rows = connection.execute(text(f"SELECT {COLUMNS} FROM users WHERE {where} ORDER BY id"))
        return [tuple(row) for row in rows]


def parsed_time(value: str | None) -> datetime | None:
    return None if value in (None, "") else datetime.fromisoformat(value)


def csv_text(value: str | None) -> str:
    """How the rule says a text cell must look: a formula start gets a leading quote."""
    if value is None:
        return ""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def rows_of(fmt: str, data: bytes) -> list[tuple[Any, ...]]:
    """The file's rows as (id, email, name, country, age, signup_ts, created_at, updated_at),
    text cells of CSV as written (neutralized)."""
    content = gzip.decompress(data).decode("utf-8")
    if fmt == "csv":
        reader = csv.reader(io.StringIO(content, newline=""))
        assert next(reader) == COLUMNS.split(", ")
        return [
            (
                int(r[0]),
                r[1],
                r[2],
                r[3] or None,
                int(r[4]) if r[4] else None,
                *(parsed_time(v) for v in r[5:]),
            )
            for r in reader
        ]
    objects = (
        json.loads(content) if fmt == "json" else [json.loads(x) for x in content.splitlines()]
    )
    return [
        (
            o["id"],
            o["email"],
            o["name"],
            o["country"],
            o["age"],
            *(parsed_time(o[c]) for c in ("signup_ts", "created_at", "updated_at")),
        )
        for o in objects
    ]


def as_written(fmt: str, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    if fmt != "csv":
        return rows
    return [(r[0], csv_text(r[1]), csv_text(r[2]), *r[3:]) for r in rows]


def submit_export(worker: Worker, options: dict[str, Any]) -> tuple[int, Any]:
    body = json.dumps({"type": "user-export", "options": options}).encode()
    return http("POST", f"{worker.url}/api/batch/jobs", body, {"Content-Type": "application/json"})


def download(worker: Worker, url: str) -> tuple[int, Any]:
    return http("GET", worker.url + url)


def check_job(view: dict[str, Any], records: int) -> dict[str, Any]:
    assert view["status"] == "completed", view
    progress = view["progress"]
    assert (progress["total"], progress["processed"], progress["successful"]) == (records,) * 3
    assert (progress["failed"], progress["skipped"], progress["percentage"]) == (0, 0, 100.0)
    assert progress["totalChunks"] == -(-records // 1000)  # ≤ 1000 records per chunk
    result = view["result"]
    assert set(result) == {"recordCount", "downloadUrl", "expiresAt", "bytes", "sha256"}
    assert result["recordCount"] == records
    expires = datetime.fromisoformat(result["expiresAt"]).timestamp()
    assert abs(expires - (time.time() + 86400)) < 300  # 24 h by default
    assert f"expires={int(expires)}&signature=" in result["downloadUrl"]
    return result


def check_file(result: dict[str, Any], data: bytes) -> None:
    assert len(data) == result["bytes"]
    assert hashlib.sha256(data).hexdigest() == result["sha256"]


# -- one worker, 100,000 users, each format -----------------------------------------------------


@pytest.fixture(scope="module")
def seeded(
    kafka_bootstrap: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, Worker, Engine]]:
    with fresh_schema(database_url) as schema_url:
        stack = Stack(kafka_bootstrap, schema_url, app_id(), tmp_path_factory.mktemp("x"))
        db = create_engine(schema_url)
        try:
            worker = stack.worker(SLUICE_SIGNING_KEY=KEY).wait_ready()  # it creates the tables
            seed(db, SEEDED)
            yield stack, worker, db
        finally:
            stack.stop_all()
            db.dispose()


@pytest.mark.parametrize("fmt", ["json", "ndjson"])
def test_export_in_each_format_is_exactly_the_filtered_rows(
    seeded: tuple[Stack, Worker, Engine], fmt: str
) -> None:
    stack, worker, db = seeded
    want = expected_rows(db, FILTER_SQL)
    assert len(want) == MATCHING

    status, accepted = submit_export(worker, {"format": fmt, "filter": FILTER})
    assert status == 202, accepted
    assert (accepted["totalRecords"], accepted["totalChunks"]) == (MATCHING, MATCHING // 1000)
    result = check_job(stack.wait_finished(worker, accepted["jobId"]), MATCHING)
    assert result["downloadUrl"].startswith(
        f"/api/batch/exports/{accepted['jobId']}/users.{fmt}.gz?"
    )

    status, data = download(worker, result["downloadUrl"])
    assert status == 200
    check_file(result, data)
    assert rows_of(fmt, data) == as_written(fmt, want)


def test_cli_export_follow_writes_the_csv_file(
    seeded: tuple[Stack, Worker, Engine], tmp_path: Path
) -> None:
    stack, worker, db = seeded
    out = tmp_path / "de.csv.gz"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "api",
            "export",
            "--country",
            "DE",
            "--signup-from",
            FILTER["signupFrom"],
            "--signup-to",
            FILTER["signupTo"],
            "--age-min",
            "18",
            "--age-max",
            "65",
            "--format",
            "csv",
            "-o",
            str(out),
            "--follow",
        ],
        cwd=REPO,
        env=stack.env(SLUICE_API_URL=worker.url),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "rec" in done.stderr and f"wrote {out}: {MATCHING:,} records" in done.stderr
    data = out.read_bytes()
    assert rows_of("csv", data) == as_written("csv", expected_rows(db, FILTER_SQL))
    # the quoting and neutralization as they appear in the file
    content = gzip.decompress(data).decode()
    assert '"\'=HYPERLINK(""http://evil.example/' in content
    assert '"Multi\nLine ' in content and "'-user13@example.com" in content


def test_signed_urls_refuse_expiry_and_tampering(seeded: tuple[Stack, Worker, Engine]) -> None:
    stack, worker, _ = seeded
    status, accepted = submit_export(worker, {"format": "ndjson", "filter": {"ageMin": 65}})
    assert status == 202, accepted
    view = stack.wait_finished(worker, accepted["jobId"])
    url = view["result"]["downloadUrl"]
    job_id = accepted["jobId"]
    assert download(worker, url)[0] == 200

    def refused(candidate: str, says: str) -> None:
        status, answer = download(worker, candidate)
        assert status == 403, (candidate, status, answer)
        assert says in answer["error"]["message"]

    path, _, query = url.partition("?")
    params = dict(p.split("=") for p in query.split("&"))
    signature, expires = params["signature"], int(params["expires"])
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    refused(f"{path}?expires={expires}&signature={flipped}", "signature")
    refused(f"{path}?expires={expires + 3600}&signature={signature}", "signature")
    refused(f"{path.replace('ndjson', 'csv')}?expires={expires}&signature={signature}", "signature")
    # a job that does not exist has no files, whatever the link says
    other_job = path.replace(job_id, str(uuid.uuid4()))
    status, answer = download(worker, f"{other_job}?expires={expires}&signature={signature}")
    assert status == 404, answer
    refused(path, "not signed")
    refused(f"{path}?expires={expires}", "not signed")
    # signed with the right key, but expired a second ago
    past = int(time.time()) - 1
    refused(signed_url(job_id, "users.ndjson.gz", past), "expired")
    # signed, not expired, but no such file
    missing = signed_url(job_id, "users.csv.gz", int(time.time()) + 60)
    assert download(worker, missing)[0] == 404


def test_bad_export_requests_name_the_field(seeded: tuple[Stack, Worker, Engine]) -> None:
    _, worker, db = seeded
    with db.connect() as connection:
        jobs_before = connection.execute(text("SELECT count(*) FROM sluice_jobs")).scalar_one()
    cases = [
        ({"format": "xml"}, "format"),
        ({"filter": {"country": "DEU"}}, "filter.country"),
        ({"filter": {"city": "Berlin"}}, "filter.city"),
        ({"filter": {"signupFrom": "last year"}}, "filter.signupFrom"),
        ({"filter": {"ageMin": 50, "ageMax": 40}}, "filter.ageMin"),
        ({"filter": {"ageMax": 200}}, "filter.ageMax"),
        ({"chunkSize": 5000}, "chunkSize"),
    ]
    for options, field in cases:
        status, answer = submit_export(worker, options)
        assert (status, answer["error"]["field"]) == (400, field), (options, answer)
    body = json.dumps({"type": "user-export", "data": [{"id": 1}]}).encode()
    status, answer = http(
        "POST", f"{worker.url}/api/batch/jobs", body, {"Content-Type": "application/json"}
    )
    assert (status, answer["error"]["field"]) == (400, "data")
    status, answer = http(
        "POST",
        f"{worker.url}/api/batch/jobs?type=user-export",
        b"id\r\n1\r\n",
        {"Content-Type": "text/csv"},
    )
    assert (status, answer["error"]["field"]) == (400, "type")
    assert "takes no upload" in answer["error"]["message"]
    with db.connect() as connection:
        jobs_after = connection.execute(text("SELECT count(*) FROM sluice_jobs")).scalar_one()
    assert jobs_after == jobs_before


# -- two workers share one export ----------------------------------------------------------------


def test_two_workers_share_one_export(stack: Stack, db: Engine) -> None:
    # no SLUICE_SIGNING_KEY: the key file both workers find in the shared export directory
    first = stack.worker().wait_ready()
    second = stack.worker().wait_ready()
    first.wait_ready()
    seed(db, 40_000)
    with db.begin() as connection:  # gaps in the ids
        connection.execute(text("DELETE FROM users WHERE id % 1000 = 7"))
    want = expected_rows(db)
    status, accepted = submit_export(first, {"format": "ndjson", "chunkSize": 500})
    assert status == 202, accepted
    assert accepted["totalChunks"] == -(-len(want) // 500)
    view = stack.wait_finished(second, accepted["jobId"])  # routed to the job's owner
    result = view["result"]
    assert view["status"] == "completed" and result["recordCount"] == len(want)
    assert view["progress"]["successful"] == len(want) == view["progress"]["total"]

    applied = [w.metric("sluice_chunks_total", 'result="applied"') for w in (first, second)]
    assert all(count > 0 for count in applied), applied
    assert sum(applied) == view["progress"]["totalChunks"]

    files = []
    for worker in (first, second):  # any worker serves the file, with the same signature
        status, data = download(worker, result["downloadUrl"])
        assert status == 200, data
        check_file(result, data)
        files.append(data)
    assert files[0] == files[1]
    assert rows_of("ndjson", files[0]) == want
    parts = list((stack.workdir / "data" / "exports" / accepted["jobId"]).glob("part-*"))
    assert parts == []  # removed once the file was assembled
