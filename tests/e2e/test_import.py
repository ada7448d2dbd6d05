"""A user import from upload to committed rows, through the real broker, workers and database."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sqlalchemy import Engine, text

from tests.e2e.helpers import assert_job_matches, assert_table_matches, seed_existing
from tests.support.users_data import expected, generate
from tests.support.workers import REPO, Stack, http

MODES = {
    "skip": {"skipDuplicates": "true"},
    "update": {"updateDuplicates": "true"},
    "fail": {},
}


@pytest.mark.parametrize("mode", list(MODES))
def test_csv_import_gives_exact_rows_and_counts(stack: Stack, db: Engine, mode: str) -> None:
    worker = stack.worker().wait_ready()
    upload = generate(20_000, seed=len(mode))
    seed_existing(db, upload)

    accepted = stack.submit_csv(worker, upload.csv_bytes(), **MODES[mode])
    assert accepted["status"] == "queued"
    assert accepted["statusUrl"] == f"/api/batch/jobs/{accepted['jobId']}"
    view = stack.wait_finished(worker, accepted["jobId"])

    want = expected(upload, mode)
    assert_job_matches(view, want, total=20_000)
    assert_table_matches(db, want)
    assert view["progress"]["totalChunks"] >= 20  # 1000 per chunk, cut per partition


def test_ndjson_inline_json_and_multipart(stack: Stack, db: Engine) -> None:
    worker = stack.worker().wait_ready()
    upload = generate(5_000, seed=11, existing=0)
    accepted = stack.submit(
        worker,
        upload.ndjson_bytes(),
        "application/x-ndjson",
        updateDuplicates="true",
        chunkSize="250",
    )
    view = stack.wait_finished(worker, accepted["jobId"])
    want = expected(upload, "update")
    assert_job_matches(view, want, total=5_000)
    assert_table_matches(db, want)

    inline = {
        "type": "user-import",
        "options": {"skipDuplicates": True},
        "data": [
            {"email": "Inline@Example.com", "name": "Ina", "age": 33, "extra": 1},
            {"email": "inline@example.com", "name": "Second"},
            {"email": "broken", "name": "X"},
            {"email": "user1@example.com", "name": "Exists already"},
        ],
    }
    status, answer = http(
        "POST",
        f"{worker.url}/api/batch/jobs",
        json.dumps(inline).encode(),
        {"Content-Type": "application/json"},
    )
    assert status == 202, answer
    view = stack.wait_finished(worker, answer["jobId"])
    assert (
        view["progress"]["successful"],
        view["progress"]["skipped"],
        view["progress"]["failed"],
    ) == (1, 2, 1)
    assert view["summary"]["unknownColumns"] == ["extra"]
    assert view["summary"]["errors"] == [
        {"row": 3, "field": "email", "reason": "must contain exactly one @"}
    ]
    with db.connect() as connection:
        row = connection.execute(
            text("SELECT name, age FROM users WHERE email = 'inline@example.com'")
        ).one()
    assert tuple(row) == ("Ina", 33)

    # multipart/form-data: option fields first, then the file part
    boundary = "sluice-test-boundary"
    parts = [
        ("type", None, b"user-import"),
        ("updateDuplicates", None, b"true"),
        ("file", "users.csv", b"email,name,age\r\nform@example.com,Form,40\r\nbad,X,\r\n"),
    ]
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename:
            body += b"Content-Type: text/csv\r\n"
        body += b"\r\n" + content + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    status, answer = http(
        "POST",
        f"{worker.url}/api/batch/jobs",
        body,
        {"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert status == 202, answer
    view = stack.wait_finished(worker, answer["jobId"])
    assert (
        view["progress"]["total"],
        view["progress"]["successful"],
        view["progress"]["failed"],
    ) == (2, 1, 1)
    with db.connect() as connection:
        age = connection.execute(
            text("SELECT age FROM users WHERE email = 'form@example.com'")
        ).scalar_one()
    assert age == 40


def test_two_workers_share_one_job(stack: Stack, db: Engine) -> None:
    first = stack.worker().wait_ready()
    second = stack.worker().wait_ready()
    first.wait_ready()
    upload = generate(20_000, seed=5)
    seed_existing(db, upload)
    accepted = stack.submit_csv(first, upload.csv_bytes(), updateDuplicates="true", chunkSize="200")
    # ask the other worker: the lookup is routed to the owner of the job's partition
    view = stack.wait_finished(second, accepted["jobId"])
    want = expected(upload, "update")
    assert_job_matches(view, want, total=20_000)
    assert_table_matches(db, want)
    applied = [w.metric("sluice_chunks_total", 'result="applied"') for w in (first, second)]
    assert all(count > 0 for count in applied), applied
    assert sum(applied) == view["progress"]["totalChunks"]


def test_cli_submit_follow(stack: Stack, db: Engine, tmp_path) -> None:
    worker = stack.worker().wait_ready()
    upload = generate(3_000, seed=3, existing=0)
    path = tmp_path / "users.csv"
    path.write_bytes(upload.csv_bytes())
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "api",
            "submit",
            str(path),
            "--type",
            "user-import",
            "--opt",
            "skipDuplicates=true",
            "--opt",
            "chunkSize=100",
            "--follow",
            "--json",
        ],
        cwd=REPO,
        env=stack.env(SLUICE_API_URL=worker.url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    want = expected(upload, "skip")
    summary = json.loads(done.stdout)  # one document: the job as it ended
    assert summary["status"] == "completed"
    assert (
        summary["progress"]["successful"],
        summary["progress"]["skipped"],
        summary["progress"]["failed"],
    ) == (want.successful, want.skipped, want.failed)
    assert "rec" in done.stderr  # the progress bar was drawn
    assert_table_matches(db, want)
