"""Dead letters end to end: failed chunks are dead-lettered, listed, shown and replayed once.

A PostgreSQL trigger on `users` rejects rows whose name starts with "boom", so the chunks holding
them fail (retryAttempts=0: at the first attempt) and land on the chunk dead-letter topic. The
trigger is then relaxed (or dropped) and the dead letters are replayed through the HTTP API and
the `sluice dlq` command, against a real broker, real workers and real PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.parse
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text

from streams.jobtypes.user_import import UserImport
from streams.models import Chunk
from streams.sink.jobs import ensure_job
from streams.wire.chunks import encode_chunk
from tests.support.kafka_io import emails_on_one_partition, eventually, produce
from tests.support.workers import REPO, Stack, Worker, http

TOTAL = 2_000
BOOM_ROWS = (137, 688, 1_311, 1_950)  # spread across the file
UPSTREAM_OPTIONS = UserImport().parse_options({"chunkSize": 100, "retryAttempts": 0})

_BOOM_FUNCTION = """
CREATE OR REPLACE FUNCTION sluice_test_boom() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF NEW.name LIKE 'boom%' THEN
        {action}
    END IF;
    RETURN NEW;
END
$fn$
"""
RAISING = _BOOM_FUNCTION.format(action="RAISE EXCEPTION 'boom row %', NEW.email;")
SLOW = _BOOM_FUNCTION.format(action="PERFORM pg_sleep(0.5);")
TRIGGER = (
    "CREATE TRIGGER users_boom BEFORE INSERT OR UPDATE ON users "
    "FOR EACH ROW EXECUTE FUNCTION sluice_test_boom()"
)


# -- helpers --------------------------------------------------------------------------------------


def _sql(db: Engine, *statements: str) -> None:
    with db.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))


def _names(db: Engine, job_id: str | None = None) -> dict[str, str]:
    query = "SELECT email, name FROM users"
    params: dict[str, Any] = {}
    if job_id is not None:
        query += " WHERE batch_job_id = :job"
        params["job"] = job_id
    with db.connect() as connection:
        return {email: name for email, name in connection.execute(text(query), params)}


def _get(worker: Worker, path: str, **query: str) -> tuple[int, Any]:
    url = f"{worker.url}/api/batch{path}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    return http("GET", url, timeout=30)


def _dlq(worker: Worker, **query: str) -> list[dict[str, Any]]:
    status, answer = _get(worker, "/dlq", **query)
    assert status == 200, answer
    return answer["items"]


def _replay(worker: Worker, **body: Any) -> dict[str, Any]:
    status, answer = http(
        "POST",
        f"{worker.url}/api/batch/dlq/replay",
        json.dumps(body).encode(),
        {"Content-Type": "application/json"},
        timeout=60,
    )
    assert status == 200, answer
    answer.pop("_headers", None)
    return answer


def _job(worker: Worker, job_id: str) -> dict[str, Any]:
    status, view = _get(worker, f"/jobs/{job_id}")
    assert status == 200, view
    view.pop("_headers", None)
    return view


def _upload() -> tuple[bytes, dict[str, str]]:
    names = {
        f"user{i}@example.com": f"boom {i}" if i in BOOM_ROWS else f"User {i}"
        for i in range(1, TOTAL + 1)
    }
    lines = ["email,name", *(f"{email},{name}" for email, name in names.items())]
    return ("\n".join(lines) + "\n").encode(), names


def _upstream_chunk(job_id: str, partition: int, seq: int, emails: list[str]) -> bytes:
    """A valid chunk record as an upstream producer would write it; its last row is a boom."""
    records = [
        {
            "row": seq * 10 + n + 1,
            "fields": {"email": email, "name": "boom up" if n == len(emails) - 1 else f"Up {n}"},
            "error": None,
        }
        for n, email in enumerate(emails)
    ]
    chunk = Chunk(
        job_id=job_id,
        job_type="user-import",
        tenant="default",
        chunk_index=seq,
        partition=partition,
        partition_seq=seq,
        options=UPSTREAM_OPTIONS,
        records=records,
    )
    return encode_chunk(chunk)


def _produce_upstream(
    stack: Stack, db: Engine, job_id: str, chunks: int, per_chunk: int
) -> dict[str, Any]:
    """Chunks of a job an older Sluice made (in the registry, without origin marks)."""
    ensure_job(db, job_id, "default", "user-import", UPSTREAM_OPTIONS, None)
    partition, emails = emails_on_one_partition(chunks * per_chunk, f"up-{job_id[:8]}-")
    groups = [emails[i * per_chunk : (i + 1) * per_chunk] for i in range(chunks)]
    messages = [
        (f"{job_id}:{seq}".encode(), _upstream_chunk(job_id, partition, seq, group))
        for seq, group in enumerate(groups)
    ]
    offsets = asyncio.run(
        produce(stack.bootstrap_servers, f"{stack.app_id}.chunks", partition, messages)
    )
    return {"partition": partition, "offsets": offsets, "emails": emails}


def _wait_dead_lettered(worker: Worker, job_id: str, count: int) -> list[dict[str, Any]]:
    def found() -> list[dict[str, Any]] | None:
        items = _dlq(worker, job=job_id)
        return items if len(items) == count else None

    try:
        return eventually(found, f"{count} dead letter(s) of job {job_id}", timeout=30)
    except AssertionError as exc:
        seen = _dlq(worker, all="true")
        raise AssertionError(f"{exc}; dead letters: {seen}\n{worker.tail(40)}") from None


def _wait_rows(db: Engine, job_id: str, count: int) -> dict[str, str]:
    def rows() -> dict[str, str] | None:
        found = _names(db, job_id)
        return found if len(found) == count else None

    return eventually(rows, f"{count} users rows of job {job_id}", timeout=30)


def _wait_replay_done(worker: Worker, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    view: dict[str, Any] = {}
    while time.monotonic() < deadline:
        view = _job(worker, job_id)
        if view["status"] != "active" and view["summary"]["deadLetteredChunks"] == 0:
            return view
        time.sleep(0.1)
    raise AssertionError(f"replay of {job_id} not done: {view}\n{worker.tail(40)}")


def _iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _sluice(worker: Worker, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / ".venv/bin/sluice"), "dlq", *args],
        cwd=REPO,
        env=_cli_env(worker),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _cli_env(worker: Worker) -> dict[str, str]:
    return {**worker.env, "SLUICE_API_URL": worker.url}


# -- tests ----------------------------------------------------------------------------------------


def test_dead_letters_are_listed_shown_and_replayed_once(stack: Stack, db: Engine) -> None:
    worker = stack.worker(None).wait_ready()
    _sql(db, RAISING, TRIGGER)
    body, names = _upload()

    accepted = stack.submit_csv(worker, body, chunkSize="100", retryAttempts="0")
    job = accepted["jobId"]
    before = stack.wait_finished(worker, job)
    before.pop("_headers", None)
    progress, summary = before["progress"], before["summary"]
    assert before["status"] == "completed", before
    assert progress["total"] == progress["processed"] == TOTAL
    assert progress["successful"] + progress["failed"] + progress["skipped"] == TOTAL
    assert progress["failed"] == summary["deadLettered"] > 0, before
    stored = _names(db)
    assert len(stored) == progress["successful"]
    assert all(names[email] == name for email, name in stored.items())
    assert not any(name.startswith("boom") for name in stored.values())
    assert all("chunk dead-lettered" in e["reason"] for e in summary["errors"]), summary

    # -- list ------------------------------------------------------------------------------------
    items = _dlq(worker, job=job)
    n = len(items)
    assert n == summary["deadLetteredChunks"] > 0, (items, summary)
    assert n <= len(BOOM_ROWS)
    ids = [item["id"] for item in items]
    assert len(set(ids)) == n
    error_class = items[0]["errorClass"]
    for item in items:
        assert item["jobId"] == job
        assert item["attempts"] == 1
        assert isinstance(item["chunkIndex"], int)
        assert item["source"]["topic"] == f"{stack.app_id}.chunks"
        assert item["id"].startswith(f"{stack.app_id}.chunks.dlq:")
        assert item["errorClass"] == error_class
        message = item["errorMessage"]
        assert "boom row user" in message, message
        assert "\n" not in message and "postgresql://" not in message, message
        assert "Traceback" not in message and "CONTEXT" not in message, message
        assert item["replayedAt"] is None and item["replayOf"] is None
        assert item["firstFailureAt"] and item["lastFailureAt"]
        failed_ago = (datetime.now(UTC) - _iso(item["lastFailureAt"])).total_seconds()
        assert abs(item["ageSeconds"] - failed_ago) <= 2, (item, failed_ago)

    # -- filters ---------------------------------------------------------------------------------
    assert {i["id"] for i in _dlq(worker, job=job, error=error_class)} == set(ids)
    assert {i["id"] for i in _dlq(worker, job=job, error=error_class.lower())} == set(ids)
    assert _dlq(worker, job=job, error="NoSuchError") == []
    assert {i["id"] for i in _dlq(worker, job=job, since="1h")} == set(ids)
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert _dlq(worker, job=job, since=future) == []
    assert _dlq(worker, job="no-such-job") == []

    # -- paging ----------------------------------------------------------------------------------
    paged: list[str] = []
    cursor: str | None = None
    for _ in range(n + 5):
        query = {"job": job, "limit": "1", **({"cursor": cursor} if cursor else {})}
        status, page = _get(worker, "/dlq", **query)
        assert status == 200, page
        assert len(page["items"]) <= 1
        paged += [item["id"] for item in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert cursor is None, "paging did not end"
    assert paged == ids  # the same ones, in the same order, none twice

    # -- show ------------------------------------------------------------------------------------
    shown_records = 0
    for item in items:
        status, shown = _get(worker, f"/dlq/{item['id']}")
        assert status == 200, shown
        assert shown["id"] == item["id"]
        chunk = shown["chunk"]
        assert chunk["jobId"] == job and chunk["jobType"] == "user-import"
        assert chunk["chunkIndex"] == item["chunkIndex"]
        assert chunk["partition"] == item["source"]["partition"]
        assert chunk["records"] > 0
        assert chunk["firstRow"] <= chunk["lastRow"]
        assert shown["headers"]["sluice-error-class"] == error_class
        assert shown["headers"]["sluice-job-id"] == job
        assert shown["valueBytes"] > 0
        shown_records += chunk["records"]
    assert shown_records == progress["failed"] == summary["deadLettered"]

    status, answer = _get(worker, "/dlq/not-a-dead-letter-id")
    assert status == 400, answer
    status, answer = _get(worker, f"/dlq/{stack.app_id}.chunks.dlq:0:999999")
    assert status == 404, answer
    status, answer = _get(worker, "/dlq", since="yesterday")
    assert status == 400 and answer["error"]["field"] == "since", answer

    # -- dry run ---------------------------------------------------------------------------------
    dry = _replay(worker, job=job, dryRun=True)
    assert dry["dryRun"] is True
    assert (dry["matched"], dry["replayed"], dry["alreadyReplayed"]) == (n, 0, 0), dry
    assert dry["wouldReplay"] == n, dry
    assert dry["jobs"] == {job: n} and sorted(dry["deadLetters"]) == sorted(ids)
    assert dry["truncated"] is False
    time.sleep(1)
    assert _job(worker, job) == before
    assert [i["id"] for i in _dlq(worker, job=job)] == ids

    # -- replay, with boom rows slowed instead of rejected ---------------------------------------
    _sql(db, SLOW)
    started = time.monotonic()
    answer = _replay(worker, job=job)
    answered = time.monotonic() - started
    right_after = _job(worker, job)
    assert answer["dryRun"] is False and answer["wouldReplay"] is None, answer
    assert (answer["matched"], answer["replayed"], answer["alreadyReplayed"]) == (n, n, 0)
    assert answer["jobs"] == {job: n} and sorted(answer["deadLetters"]) == sorted(ids)
    # The replay reopens the job until the replayed chunks' outcomes are in, and answers only
    # once the job's status has taken the replay in: the first GET after it says 'active'
    # (each replayed chunk is slowed by 0.5 s, so it cannot have ended again yet).
    reopened = right_after
    reopened_after = time.monotonic() - started
    assert reopened["status"] == "active", (right_after, reopened)
    assert reopened["summary"]["lastReplayAt"] is not None
    assert reopened["completedAt"] is None, reopened
    assert 0 < reopened["summary"]["deadLetteredChunks"] <= n, reopened
    assert reopened["progress"]["failed"] > 0, reopened

    after = _wait_replay_done(worker, job)
    took = time.monotonic() - started
    progress2, summary2 = after["progress"], after["summary"]
    assert after["status"] == "completed", after
    assert progress2["failed"] == 0 and progress2["skipped"] == 0, after
    assert progress2["successful"] == progress2["processed"] == progress2["total"] == TOTAL
    assert (
        progress2["currentChunk"] == progress2["totalChunks"] == before["progress"]["totalChunks"]
    )
    assert summary2["deadLettered"] == 0 and summary2["deadLetteredChunks"] == 0, after
    assert summary2["created"] == TOTAL and summary2["updated"] == 0
    assert summary2["errors"] == [], summary2
    assert _iso(after["completedAt"]) > _iso(before["completedAt"])
    assert took >= 0.5  # every replayed chunk holds a boom row, slowed by 0.5 s
    assert _names(db) == names
    print(
        f"\n[replay] job {job}: {TOTAL} records, {before['progress']['totalChunks']} chunks, "
        f"{n} dead-lettered chunks holding {shown_records} records ({error_class}); "
        f"replay answered in {answered:.3f}s; first GET after it said {right_after['status']!r}, "
        f"'active' seen {reopened_after:.3f}s after the POST; "
        f"job completed again {took:.2f}s after the POST"
    )

    # -- a second replay changes nothing ---------------------------------------------------------
    table = _names(db)
    again = _replay(worker, job=job)
    assert (again["matched"], again["replayed"], again["alreadyReplayed"]) == (n, 0, n), again
    assert again["jobs"] == {} and again["deadLetters"] == []
    time.sleep(2)
    assert _job(worker, job) == after
    assert _names(db) == table

    assert _dlq(worker, job=job) == []
    replayed = _dlq(worker, job=job, all="true")
    assert [i["id"] for i in replayed] == ids
    assert all(i["replayedAt"] for i in replayed), replayed


def test_an_upstream_chunk_that_fails_is_dead_lettered_and_replays_the_same_way(
    stack: Stack, db: Engine
) -> None:
    worker = stack.worker(None).wait_ready()
    _sql(db, RAISING, TRIGGER)
    job_id = str(uuid.uuid4())
    sent = _produce_upstream(stack, db, job_id, chunks=1, per_chunk=3)

    (item,) = _wait_dead_lettered(worker, job_id, 1)
    assert item["jobId"] == job_id and item["chunkIndex"] == 0 and item["attempts"] == 1
    assert item["source"] == {
        "topic": f"{stack.app_id}.chunks",
        "partition": sent["partition"],
        "offset": sent["offsets"][0],
    }
    assert _names(db, job_id) == {}
    status, shown = _get(worker, f"/dlq/{item['id']}")
    assert status == 200 and shown["chunk"]["records"] == 3, shown

    _sql(db, "DROP TRIGGER users_boom ON users")
    answer = _replay(worker, job=job_id)
    assert (answer["matched"], answer["replayed"], answer["alreadyReplayed"]) == (1, 1, 0)
    assert answer["jobs"] == {job_id: 1} and answer["deadLetters"] == [item["id"]]

    rows = _wait_rows(db, job_id, 3)
    assert rows == {
        sent["emails"][0]: "Up 0",
        sent["emails"][1]: "Up 1",
        sent["emails"][2]: "boom up",
    }

    again = _replay(worker, job=job_id)
    assert (again["matched"], again["replayed"], again["alreadyReplayed"]) == (1, 0, 1), again
    time.sleep(2)
    assert _names(db, job_id) == rows
    assert _dlq(worker, job=job_id) == []
    (done,) = _dlq(worker, job=job_id, all="true")
    assert done["id"] == item["id"] and done["replayedAt"]


def test_the_cli_lists_shows_and_replays(stack: Stack, db: Engine) -> None:
    worker = stack.worker(None).wait_ready()
    _sql(db, RAISING, TRIGGER)
    job_id = str(uuid.uuid4())
    sent = _produce_upstream(stack, db, job_id, chunks=3, per_chunk=2)
    items = _wait_dead_lettered(worker, job_id, 3)
    ids = [item["id"] for item in items]

    listed = _sluice(worker, "list", "--job", job_id)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:4] == ["ID", "JOB", "CHUNK", "ERROR"], listed.stdout
    for item in items:
        assert any(
            line.split()[:4] == [item["id"], job_id, str(item["chunkIndex"]), item["errorClass"]]
            for line in lines
        ), listed.stdout

    shown = _sluice(worker, "show", ids[0], "--json")
    assert shown.returncode == 0, shown.stderr
    detail = json.loads(shown.stdout)
    assert detail["id"] == ids[0] and detail["chunk"]["jobId"] == job_id

    missing = _sluice(worker, "show", f"{stack.app_id}.chunks.dlq:0:999999")
    assert missing.returncode == 66, missing  # not found
    bad_since = _sluice(worker, "list", "--since", "yesterday")
    assert bad_since.returncode == 65 and "since" in bad_since.stderr  # refused by the API

    dry = _sluice(worker, "replay", "--job", job_id[:8], "--dry-run")  # a short id will do
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout == "would replay 3 dead letters of 1 job (3 matched, 0 replayed before)\n"
    dry = _sluice(worker, "replay", "--job", job_id, "--dry-run", "--json")
    dry_answer = json.loads(dry.stdout)
    assert (dry_answer["dryRun"], dry_answer["replayed"], dry_answer["wouldReplay"]) == (
        True,
        0,
        3,
    ), dry_answer
    assert _names(db, job_id) == {}

    _sql(db, "DROP TRIGGER users_boom ON users")
    started = time.monotonic()
    replayed = _sluice(worker, "replay", "--job", job_id, "--rate", "5/s", "--json")
    took = time.monotonic() - started
    assert replayed.returncode == 0, replayed.stderr
    answer = json.loads(replayed.stdout)
    assert (answer["dryRun"], answer["replayed"], answer["alreadyReplayed"]) == (False, 3, 0)
    assert answer["jobs"] == {job_id: 3} and sorted(answer["deadLetters"]) == sorted(ids)
    assert took >= 0.4, took  # 3 at 5/s: two waits of 0.2 s
    _wait_rows(db, job_id, len(sent["emails"]))

    again = _sluice(worker, "replay", "--job", job_id, "--rate", "5/s", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["alreadyReplayed"] == 3
    after = _sluice(worker, "list", "--job", job_id, "--all")
    assert after.returncode == 0
    for dead_letter_id in ids:
        line = next(line for line in after.stdout.splitlines() if line.startswith(dead_letter_id))
        assert line.rstrip().endswith("yes"), after.stdout
    print(f"\n[cli] replayed 3 dead letters at --rate 5/s in {took:.2f}s (subprocess included)")
