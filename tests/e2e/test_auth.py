"""Who may do what, on every endpoint, against a real worker: no key, a malformed key, an unknown
key, a revoked key, a key without the scope, another tenant's key, the owner's key and an admin
key. Alice owns a finished import (with failed records and a dead-lettered chunk) and an
export; Bob is another tenant with every scope but admin. Every refusal is checked for its
status, its JSON error body and that the body shows nothing of the inside."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Engine, text

from api.http import routes
from tests.support.workers import REPO, Stack, Worker, http, run_cli

LEAKS = ("Traceback", 'File "', "postgresql://", "sqlite://", "/work/", "/tmp/", "site-packages")
LEAKS += ("SELECT ", "INSERT ", "psycopg2", "sqlalchemy", "sluice_api_keys")
UNKNOWN_KEY = "sluice_" + "x" * 43
BOOM = (
    "CREATE OR REPLACE FUNCTION sluice_test_boom() RETURNS trigger LANGUAGE plpgsql AS $fn$ "
    "BEGIN IF NEW.name LIKE 'boom%' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $fn$",
    "CREATE TRIGGER users_boom BEFORE INSERT OR UPDATE ON users "
    "FOR EACH ROW EXECUTE FUNCTION sluice_test_boom()",
)


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    scope: str
    owner_status: int  # what alice's own key gets
    body: bytes | None = None
    content_type: str | None = None
    tenant_resource: bool = True  # another tenant's key gets the 404 of a missing one


@dataclass
class World:
    worker: Worker
    alice: str
    alice_read: str
    alice_submit: str
    bob: str
    revoked: str
    job: str
    doomed: str  # alice's job that the DELETE rows delete
    export_url: str
    dead_letter: str


def _csv(prefix: str, rows: int, boom_row: int | None = None) -> bytes:
    lines = ["email,name"]
    for i in range(1, rows + 1):
        name = "boom" if i == boom_row else f"User {i}"
        email = "not-an-email" if i == 2 else f"{prefix}{i}@example.com"
        lines.append(f"{email},{name}")
    return ("\n".join(lines) + "\n").encode()


def _submit(worker: Worker, key: str, body: bytes, query: str) -> str:
    status, answer = http(
        "POST", f"{worker.url}/api/batch/jobs?{query}", body, {"Content-Type": "text/csv"}, key=key
    )
    assert status == 202, answer
    return str(answer["jobId"])


def _world(stack: Stack, db: Engine) -> World:
    worker = stack.worker().wait_ready()
    with db.begin() as connection:
        for statement in BOOM:
            connection.execute(text(statement))
    alice = stack.api_key(worker, "alice", "submit", "read", "dlq")
    revoked = stack.api_key(worker, "alice", "submit", "read", "dlq")
    status, _ = http("DELETE", f"{worker.url}/api/keys/{revoked[:15]}")
    assert status == 200
    # rows 101-150 are one chunk: its boom row fails it, with no retry, to the dead letters
    query = "type=user-import&chunkSize=100&retryAttempts=0"
    job = _submit(worker, alice, _csv("alice", 150, boom_row=120), query)
    doomed = _submit(worker, alice, _csv("doomed", 3), "type=user-import")
    export = http(
        "POST",
        f"{worker.url}/api/batch/jobs",
        json.dumps({"type": "user-export", "options": {"format": "csv"}}).encode(),
        {"Content-Type": "application/json"},
        key=alice,
    )[1]["jobId"]
    for job_id in (job, doomed, export):
        stack.wait_finished(worker, job_id)
    export_url = http("GET", f"{worker.url}/api/batch/jobs/{export}", key=alice)[1]["result"]
    status, letters = http("GET", f"{worker.url}/api/batch/dlq", key=alice)
    assert status == 200 and len(letters["items"]) == 1, letters
    return World(
        worker,
        alice,
        stack.api_key(worker, "alice", "read"),
        stack.api_key(worker, "alice", "submit"),
        stack.api_key(worker, "bob", "submit", "read", "dlq"),
        revoked,
        job,
        doomed,
        export_url["downloadUrl"],
        letters["items"][0]["id"],
    )


def _endpoints(w: World) -> list[Endpoint]:
    job = f"/api/batch/jobs/{w.job}"
    letter = urllib.parse.quote(w.dead_letter, safe="")
    replay = json.dumps({"dryRun": True}).encode()
    new_key = json.dumps({"tenant": "carol"}).encode()
    return [
        Endpoint("GET", "/api/batch/jobs", "read", 200, tenant_resource=False),
        Endpoint(
            "POST",
            "/api/batch/jobs?type=user-import",
            "submit",
            202,
            b"email,name\nnew@example.com,New\n",
            "text/csv",
            tenant_resource=False,
        ),
        Endpoint("GET", job, "read", 200),
        Endpoint("GET", f"{job}/results", "read", 200),
        Endpoint("GET", f"{job}/results.csv", "read", 200),
        Endpoint("GET", f"{job}/results.ndjson", "read", 200),
        Endpoint("GET", f"{job}/errors", "read", 200),
        Endpoint("POST", f"{job}/cancel", "submit", 409),  # it is finished already
        Endpoint("GET", "/api/batch/dlq", "dlq", 200, tenant_resource=False),
        Endpoint("GET", f"/api/batch/dlq/{letter}", "dlq", 200),
        Endpoint(
            "POST",
            "/api/batch/dlq/replay",
            "dlq",
            200,
            replay,
            "application/json",
            tenant_resource=False,
        ),
        Endpoint("GET", "/api/keys", "admin", 403, tenant_resource=False),
        Endpoint(
            "POST", "/api/keys", "admin", 403, new_key, "application/json", tenant_resource=False
        ),
        Endpoint("DELETE", "/api/keys/sluice_abcdefgh", "admin", 403, tenant_resource=False),
        Endpoint("DELETE", f"/api/batch/jobs/{w.doomed}", "submit", 204),  # last: it deletes
    ]


def _route_of(w: World, e: Endpoint) -> tuple[str, str]:
    path = e.path.partition("?")[0]
    for concrete, name in (
        (w.job, "{job_id}"),
        (w.doomed, "{job_id}"),
        (urllib.parse.quote(w.dead_letter, safe=""), "{dead_letter_id}"),
        ("sluice_abcdefgh", "{prefix}"),
    ):
        path = path.replace(concrete, name)
    return e.method, path


def test_the_table_below_covers_every_guarded_route() -> None:
    """Checked against the route table itself: a new route must join the table."""
    job, doomed = "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"
    world = World(*(["x"] * 6), job, doomed, "x", "t.chunks.dlq:0:1")  # type: ignore[arg-type]
    table = {_route_of(world, e): e.scope for e in _endpoints(world)}
    guarded = {
        (r.method, r.path): r.handler.scope  # type: ignore[union-attr]
        for r in routes(cast(Any, None))
        if hasattr(r.handler, "scope")
    }
    assert table == guarded


def _call(w: World, e: Endpoint, key: str | None, authorization: str | None = None) -> Any:
    headers = {"Content-Type": e.content_type} if e.content_type else {}
    if authorization is not None:
        headers["Authorization"] = authorization
    return http(
        "GET" if e.method == "GET" else e.method, w.worker.url + e.path, e.body, headers, key=key
    )


def _refusal(problems: list[str], what: str, answer: Any, status: int, code: str) -> None:
    got, body = answer
    if got != status:
        problems.append(f"{what}: {got}, expected {status}: {body!r:.300}")
        return
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or error.get("code") != code or not error.get("message"):
        problems.append(f"{what}: not a JSON error with code {code}: {body!r:.300}")
        return
    leaked = [leak for leak in LEAKS if leak in json.dumps(error)]
    if leaked:
        problems.append(f"{what}: the error shows {leaked}: {error}")
    if status == 401 and body["_headers"].get("WWW-Authenticate") != 'Bearer realm="sluice"':
        problems.append(f"{what}: 401 without WWW-Authenticate: {body['_headers']}")


def _without_key(w: World, e: Endpoint, problems: list[str]) -> None:
    what = f"{e.method} {e.path}"
    _refusal(problems, f"{what} with no key", _call(w, e, None), 401, "unauthorized")
    for header in ("Basic YWxpY2U6c2VjcmV0", "Bearer", "Bearer short", f"Token {w.alice}"):
        answer = _call(w, e, None, header)
        _refusal(problems, f"{what} with Authorization {header[:12]}…", answer, 401, "unauthorized")
    for name, key in (("an unknown key", UNKNOWN_KEY), ("a revoked key", w.revoked)):
        _refusal(problems, f"{what} with {name}", _call(w, e, key), 401, "unauthorized")


def _with_keys(w: World, e: Endpoint, problems: list[str]) -> None:
    what = f"{e.method} {e.path}"
    narrow = w.alice_submit if e.scope in ("read", "dlq") else w.alice_read
    _refusal(problems, f"{what} without the {e.scope} scope", _call(w, e, narrow), 403, "forbidden")
    if e.tenant_resource:
        answer = _call(w, e, w.bob)
        _refusal(problems, f"{what} with another tenant's key", answer, 404, "not_found")
    got, body = _call(w, e, w.alice)
    if got != e.owner_status:
        problems.append(f"{what} with the owner's key: {got}, expected {e.owner_status}: {body}")


def test_every_endpoint_needs_a_valid_key_with_its_scope_and_the_owners_tenant(
    stack: Stack, db: Engine
) -> None:
    w = _world(stack, db)
    problems: list[str] = []
    for endpoint in _endpoints(w):
        _without_key(w, endpoint, problems)
        _with_keys(w, endpoint, problems)
    assert not problems, "\n".join(problems)

    # listings and replays of another tenant see none of alice's
    base = w.worker.url + "/api/batch"
    assert http("GET", f"{base}/jobs", key=w.bob)[1]["items"] == []
    assert http("GET", f"{base}/dlq", key=w.bob)[1]["items"] == []
    replayed = http(
        "POST", f"{base}/dlq/replay", b"{}", {"Content-Type": "application/json"}, key=w.bob
    )
    assert replayed[1]["matched"] == 0, replayed
    # an admin sees across tenants, and names one to list
    assert http("GET", f"{base}/jobs/{w.job}")[0] == 200
    listed = http("GET", f"{base}/dlq?tenant=alice")[1]["items"]
    assert [item["id"] for item in listed] == [w.dead_letter]

    # the signed link is its own credential; a key of another tenant does not open it
    link = w.worker.url + w.export_url
    assert http("GET", link, key=None)[0] == 200
    assert http("GET", link, key=w.alice)[0] == 200
    assert http("GET", link, key=w.bob)[0] == 404
    assert http("GET", link, key=w.revoked)[0] == 401
    tampered = link.replace("signature=", "signature=0")
    assert http("GET", tampered, key=None)[0] == 403

    # open to anyone: health, metrics, the contract
    for path in ("/api/health", "/metrics", "/openapi.json", "/api/openapi.yaml"):
        assert http("GET", w.worker.url + path, key=None)[0] == 200, path


def _sluice(stack: Stack, config: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = stack.env(SLUICE_CONFIG_FILE=config, SLUICE_API_URL=stack.workers[0].url)
    env.pop("SLUICE_API_KEY")
    return run_cli(args, env, 60)


def test_keys_made_with_the_cli_work_and_a_revoke_holds_at_once_on_every_worker(
    stack: Stack, tmp_path: Any
) -> None:
    first, second = stack.worker(), stack.worker()
    first.wait_ready(), second.wait_ready()
    config = str(tmp_path / "sluice.json")

    made = _sluice(stack, config, "keys", "create", "--tenant", "acme", "--scope", "read,submit")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("sluice_") and len(key) == 50, made.stdout
    assert "shown once" in made.stderr and config in made.stderr
    assert json.loads((tmp_path / "sluice.json").read_text()) == {"apiKey": key}
    assert (tmp_path / "sluice.json").stat().st_mode & 0o777 == 0o600

    listed = _sluice(stack, config, "keys", "list", "--tenant", "acme", "--json")
    (shown,) = json.loads(listed.stdout)
    assert shown["prefix"] == key[:15] and shown["scopes"] == ["submit", "read"]
    assert key not in listed.stdout  # prefixes only

    # the CLI sends the key it saved
    job = _sluice(
        stack,
        config,
        "submit",
        str(REPO / "docs/examples/users.csv"),
        "--type",
        "user-import",
        "--json",
    )
    assert job.returncode == 0, job.stderr
    job_id = json.loads(job.stdout)["jobId"]
    for worker in (first, second):
        assert http("GET", f"{worker.url}/api/batch/jobs/{job_id}", key=key)[0] == 200

    revoked = _sluice(stack, config, "keys", "revoke", key[:15])
    assert revoked.returncode == 0, revoked.stderr
    started = time.monotonic()
    for worker in (first, second):
        status, body = http("GET", f"{worker.url}/api/batch/jobs", key=key)
        assert status == 401, body
    assert time.monotonic() - started < 5  # no cache to expire: the next request fails
    failed = _sluice(stack, config, "status", job_id)
    assert failed.returncode == 77 and "SLUICE_API_KEY" in failed.stderr, failed
    assert failed.stderr.count("\n") == 1 and failed.stdout == ""
    assert _sluice(stack, config, "keys", "revoke", "sluice_nosuchke").returncode == 66
