"""The API says the same thing the same way everywhere: the failed-records files hold the same
fields in CSV and NDJSON (the columns a job ignored in neither), a job's `createdAt` is the
listing's, `totalChunks` is the 202's from the first status on, an export's summary speaks of
what it exported, and a multipart form whose file comes before `type` is refused saying so."""

from __future__ import annotations

import csv
import io
import json
import urllib.request

from tests.support.workers import TEST_API_KEY, Stack, Worker, bearer, http

COLUMNS = ["email", "name", "country", "age", "signup_ts"]
ERRORS = ["error_row", "error_field", "error_reason"]


def _file(worker: Worker, job_id: str, kind: str) -> str:
    url = f"{worker.url}/api/batch/jobs/{job_id}/results.{kind}"
    with urllib.request.urlopen(urllib.request.Request(url, headers=bearer(TEST_API_KEY))) as got:
        return str(got.read().decode())


def test_failed_records_files_agree_on_their_fields(stack: Stack) -> None:
    worker = stack.worker().wait_ready()
    lines = [
        {"email": "ok@example.com", "name": "Ok", "notes": "kept out", "age": 30},
        {"email": "bad-at-all", "name": "Bad", "notes": "also out", "country": "DE"},
        {"email": "young@example.com", "name": "Young", "age": 7, "tier": "gold"},
    ]
    body = "\n".join(json.dumps(line) for line in lines).encode()
    accepted = stack.submit(worker, body, "application/x-ndjson")
    view = stack.wait_finished(worker, accepted["jobId"])
    assert sorted(view["summary"]["unknownColumns"]) == ["notes", "tier"]

    table = list(csv.DictReader(io.StringIO(_file(worker, accepted["jobId"], "csv"))))
    objects = [
        json.loads(line) for line in _file(worker, accepted["jobId"], "ndjson").split("\n") if line
    ]
    assert list(table[0]) == [*COLUMNS, *ERRORS]
    assert [row["error_row"] for row in table] == ["2", "3"]
    for row, line in zip(table, objects, strict=True):
        assert set(line) <= set(row) and not {"notes", "tier"} & set(line), line
        for name in COLUMNS:  # a field the record had is in both; one it lacked is empty
            shown = "" if name not in line else str(line[name])
            assert row[name] == shown, (name, row, line)
        assert (row["error_field"], int(row["error_row"])) == (
            line["error_field"],
            line["error_row"],
        )


def test_status_agrees_with_the_202_and_the_listing(stack: Stack) -> None:
    worker = stack.worker().wait_ready()
    rows = "".join(f"same-{i}@example.com,Name {i}\n" for i in range(2_000))
    accepted = stack.submit_csv(worker, f"email,name\n{rows}".encode(), chunkSize="100")
    status, view = http("GET", f"{worker.url}/api/batch/jobs/{accepted['jobId']}")
    assert status == 200, view
    assert view["progress"]["totalChunks"] == accepted["totalChunks"] > 1  # never null
    assert view["progress"]["total"] == accepted["totalRecords"] == 2_000
    _, listing = http("GET", f"{worker.url}/api/batch/jobs")
    item = next(i for i in listing["items"] if i["jobId"] == accepted["jobId"])
    assert view["createdAt"] == item["createdAt"] is not None
    done = stack.wait_finished(worker, accepted["jobId"])
    assert done["createdAt"] == item["createdAt"] and done["startedAt"] is not None


def test_an_export_summary_says_what_it_exported(stack: Stack) -> None:
    worker = stack.worker().wait_ready()
    upload = (
        b"email,name,country\nde-1@example.com,A,DE\nde-2@example.com,B,de\nfr@example.com,C,FR\n"
    )
    stack.wait_finished(worker, stack.submit_csv(worker, upload)["jobId"])
    request = {"type": "user-export", "options": {"format": "ndjson", "filter": {"country": "de"}}}
    status, accepted = http(
        "POST",
        f"{worker.url}/api/batch/jobs",
        json.dumps(request).encode(),
        {"Content-Type": "application/json"},
    )
    assert status == 202, accepted
    view = stack.wait_finished(worker, accepted["jobId"])
    summary = view["summary"]
    assert (summary["exported"], summary["format"], summary["filter"]) == (
        2,
        "ndjson",
        {"country": "DE"},
    )
    assert not {"created", "updated", "unknownColumns"} & set(summary), summary
    assert view["result"]["recordCount"] == 2


def _form(parts: list[tuple[str, str | None, bytes]]) -> tuple[bytes, str]:
    boundary = "sluice-order-boundary"
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        body += content + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_a_form_whose_file_comes_before_its_type_is_refused_saying_so(stack: Stack) -> None:
    worker = stack.worker().wait_ready()
    file = ("file", "users.csv", b"email,name\nform@example.com,Form\n")
    kind = ("type", None, b"user-import")
    body, content_type = _form([file, kind])
    status, answer = http(
        "POST", f"{worker.url}/api/batch/jobs", body, {"Content-Type": content_type}
    )
    assert status == 400, answer
    assert answer["error"]["field"] == "type"
    assert "before the file part" in answer["error"]["message"], answer
    _, listing = http("GET", f"{worker.url}/api/batch/jobs")
    assert listing["items"] == []  # nothing of it was made
    body, content_type = _form([kind, file])
    status, answer = http(
        "POST", f"{worker.url}/api/batch/jobs", body, {"Content-Type": content_type}
    )
    assert status == 202, answer
