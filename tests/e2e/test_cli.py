"""The `sluice` command as people and scripts use it, run as a subprocess: it finds its server
(--api-url over SLUICE_API_URL) and says so when nothing, or something else, answers there; every
failure is one line on stderr and a documented exit code (never a traceback); --json prints
exactly one JSON document; short job ids work as git's do; `jobs`, `delete` and `errors`;
`submit --follow` exits non-zero when the job fails, is cancelled, or (--fail-on-errors) a
record failed; export writes what the file name says."""

from __future__ import annotations

import gzip
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from streams.devbroker import free_port
from streams.sink import jobs as job_registry
from tests.e2e.test_dev_run import start_run, stop, wait_healthy
from tests.e2e.test_replay import SLOW, TRIGGER, _sql
from tests.support.users_data import generate
from tests.support.workers import REPO, TEST_API_KEY, Stack, Worker, run_cli


def sluice(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return run_cli(args, env, timeout)


def failed(done: subprocess.CompletedProcess, code: int, *said: str, bar: bool = False) -> str:
    """The command ended with `code` and one line on stderr (after the progress bar of a
    followed job, when `bar`), saying each of `said`."""
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    line = done.stderr.splitlines()[-1] + "\n" if bar else done.stderr
    assert line.startswith("sluice: ") and line.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr
    for words in said:
        assert words in line, (words, done.stderr)
    return line


def bare_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    return {**env, "SLUICE_API_KEY": TEST_API_KEY, "PYTHONUNBUFFERED": "1", **extra}


@pytest.fixture
def other_service() -> Iterator[str]:
    """Another HTTP service (Python's file server): 404 pages in HTML."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_cli_says_when_nothing_or_something_else_answers(other_service: str) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    for args, env in (
        (("status", "abc", "--api-url", down), bare_env()),
        (("jobs",), bare_env(SLUICE_API_URL=down)),
        (("--api-url", down, "dlq", "list", "--json"), bare_env()),
    ):
        done = sluice(*args, env=env)
        failed(done, 69, f"nothing answers at {down} (connection refused)", "--api-url")
        assert done.stdout == ""
    # --api-url wins over SLUICE_API_URL
    wins = sluice("jobs", "--api-url", other_service, env=bare_env(SLUICE_API_URL=down))
    failed(wins, 76, f"{other_service} does not answer as a Sluice API does", "another service")
    for args in (("status", "0a1b2c3d"), ("dlq", "list"), ("results", "x")):
        failed(sluice(*args, "--api-url", other_service, env=bare_env()), 76, "(GET /api/batch")
    upload = sluice(
        "submit",
        "docs/examples/users.csv",
        "--type",
        "user-import",
        "--api-url",
        other_service,
        env=bare_env(),
    )
    failed(upload, 76, "does not answer as a Sluice API does")
    failed(sluice("jobs", "--api-url", "127.0.0.1:8000", env=bare_env()), 2, "an http(s) URL")


def test_a_server_that_hangs_up_or_stays_silent_and_ctrl_c(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"

        def hang_up() -> None:
            connection, _ = listener.accept()
            connection.close()

        threading.Thread(target=hang_up, daemon=True).start()
        hung_up = sluice("status", "0a1b2c3d", "--api-url", url, env=bare_env())
        failed(hung_up, 69, "broke the connection off without an HTTP answer")

        # Ctrl-C while the command waits for an answer: once it is connected, it is waiting
        waiting = subprocess.Popen(
            [sys.executable, "-m", "api", "jobs", "--api-url", url],
            cwd=REPO,
            env=bare_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        connection, _ = listener.accept()
        waiting.send_signal(signal.SIGINT)
        out, err = waiting.communicate(timeout=60)
        connection.close()
    failed(subprocess.CompletedProcess([], waiting.returncode, out, err), 130, "interrupted")


@pytest.fixture
def worker(stack: Stack) -> Worker:
    return stack.worker().wait_ready()


def _submit(worker: Worker, path: Path, *args: str) -> subprocess.CompletedProcess:
    return sluice("submit", str(path), "--type", "user-import", *args, env=_env(worker))


def _env(worker: Worker, **extra: str) -> dict[str, str]:
    return {**worker.env, "SLUICE_API_URL": worker.url, **extra}


def _json(done: subprocess.CompletedProcess) -> Any:
    assert done.returncode == 0, (done.returncode, done.stderr)
    return json.loads(done.stdout)  # the whole of stdout: exactly one document


def test_json_short_ids_new_commands_and_exit_codes(
    worker: Worker, db: Engine, tmp_path: Path
) -> None:
    env = _env(worker)
    path = tmp_path / "users.csv"
    path.write_bytes(generate(3_000, seed=5, existing=0).csv_bytes())

    view = _json(_submit(worker, path, "--follow", "--json", "--opt", "chunkSize=500"))
    job, failures = view["jobId"], view["progress"]["failed"]
    assert view["status"] == "completed" and failures > 0, view
    strict = _submit(worker, path, "--follow", "--fail-on-errors", "--opt", "skipDuplicates=true")
    failed(strict, 1, "completed, but", "records failed (--fail-on-errors)", bar=True)

    # short ids: the eight characters the progress bar and `sluice jobs` show
    shown = _json(sluice("status", job[:8], "--json", env=env))
    assert shown["jobId"] == job and shown["progress"] == view["progress"]
    human = sluice("status", job[:8], env=env).stdout.splitlines()
    assert human[0].split() == ["job", job] and human[2].split() == ["status", "completed"]
    twins = [f"abcdef01-0000-4000-8000-00000000000{n}" for n in (1, 2)]
    for twin in twins:  # two registered jobs whose ids start alike
        job_registry.insert_job(db, twin, "default", "user-export", {"format": "csv"})
    failed(sluice("status", "abcdef01", env=env), 2, f"'abcdef01' starts 2 job ids: {twins[1]}")
    assert twins[0] in sluice("cancel", "abcdef", env=env).stderr
    failed(sluice("errors", "abcdef0f", env=env), 66, "no job starts with 'abcdef0f'")

    # jobs: filters and pages
    listed = _json(sluice("jobs", "--type", "user-import", "--json", env=env))
    assert [item["jobId"] for item in listed["items"]][1] == job, listed
    first = _json(sluice("jobs", "--status", "completed", "--limit", "1", "--json", env=env))
    after = sluice("jobs", "--limit", "1", "--cursor", first["nextCursor"], "--json", env=env)
    assert _json(after)["items"][0]["jobId"] == job
    table = sluice("jobs", "--type", "user-import", env=env).stdout.splitlines()
    assert table[0].split() == ["JOB", "TYPE", "STATUS", "RECORDS", "CREATED", "COMPLETED", "BATCH"]
    assert table[2].split()[:4] == [job[:8], "user-import", "completed", "3,000"], table
    failed(sluice("jobs", "--status", "bogus", env=env), 65, "status must be one of", "400")

    # errors: groups with counts
    groups = _json(sluice("errors", job[:8], "--json", env=env))["groups"]
    assert sum(group["count"] for group in groups) == failures
    assert sluice("errors", job[:8], env=env).stdout.split()[:4] == [
        "COUNT",
        "FIELD",
        "REASON",
        "SAMPLE",
    ]

    # results: one JSON array; a reader that stops early ends the command quietly
    results = _json(sluice("results", job[:8], "--json", env=env))
    assert len(results) == 3_000 and results[0]["row"] == 1
    reading = subprocess.Popen(
        [sys.executable, "-m", "api", "results", job[:8]],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert reading.stdout is not None and reading.stdout.readline().split()[0] == b"ROW"
    reading.stdout.close()  # `| head -1`: 3,000 lines do not fit in the pipe
    assert reading.wait(timeout=120) == 141
    assert reading.stderr is not None and reading.stderr.read() == b""

    # delete, then nothing is there; errors answered by the API are one line
    assert _json(sluice("delete", job[:8], "--json", env=env)) == {"jobId": job, "deleted": True}
    failed(sluice("status", job, env=env), 66, f"no job '{job}'", "404 not_found")
    failed(sluice("jobs", env={**env, "SLUICE_API_KEY": "sluice_" + "x" * 43}), 77, "401")

    # one document from every command that prints data
    assert _json(_submit(worker, path, "--json"))["status"] == "queued"
    assert _json(sluice("config", "--json", env=env))["api_url"] == worker.url
    assert isinstance(_json(sluice("keys", "list", "--json", env=env)), list)
    assert _json(sluice("dlq", "list", "--json", env=env))["items"] == []
    dry = _json(sluice("dlq", "replay", "--dry-run", "--json", env=env))
    assert (dry["replayed"], dry["wouldReplay"]) == (0, 0)


def test_follow_exits_1_when_the_job_fails_or_is_cancelled(worker: Worker, db: Engine) -> None:
    env = _env(worker)
    stopped = _submit(
        worker, REPO / "docs/examples/users.csv", "--follow", "--opt", "stopOnError=true"
    )
    failed(stopped, 1, "failed: stopped at the first failed record", bar=True)

    _sql(db, SLOW, TRIGGER)  # rows named boom... take 0.5 s each
    rows = "\n".join(f"slow{i}@example.com,boom {i}" for i in range(200))
    slow = Path(worker.log_path.parent / "slow.csv")
    slow.write_text(f"email,name\n{rows}\n")
    following = subprocess.Popen(
        [sys.executable, "-m", "api", "submit", str(slow), "--type", "user-import", "--follow"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert following.stdout is not None
    job = following.stdout.readline().split()[1]  # "job  <id>", first of the accepted fields
    assert sluice("cancel", job[:8], env=env).returncode == 0
    _, err = following.communicate(timeout=120)
    assert following.returncode == 1, err
    assert f"sluice: job {job[:8]} cancelled" in err and "Traceback" not in err


def test_export_writes_what_the_file_name_says(worker: Worker, tmp_path: Path) -> None:
    env = _env(worker)
    assert _submit(worker, REPO / "docs/examples/users.csv", "--follow").returncode == 0
    plain, packed, default = tmp_path / "u.ndjson", tmp_path / "u.json.gz", tmp_path / "u.gz"
    told = _json(sluice("export", "-o", str(plain), "--json", env=env))
    assert (told["format"], told["gzip"], told["recordCount"]) == ("ndjson", False, 5), told
    lines = [json.loads(line) for line in plain.read_text().splitlines()]  # not gzip
    assert len(lines) == 5 and told["bytes"] == plain.stat().st_size
    assert sluice("export", "-o", str(packed), env=env).returncode == 0
    assert len(json.loads(gzip.decompress(packed.read_bytes()))) == 5
    assert sluice("export", "-o", str(default), env=env).returncode == 0
    assert gzip.decompress(default.read_bytes()).startswith(b"id,email,name")  # csv
    failed(sluice("export", "-o", str(plain), "--format", "csv", env=env), 2, "make them agree")


def test_sluice_run_hints_at_its_own_url(stack: Stack, tmp_path: Path) -> None:
    port = free_port()
    dead = f"http://127.0.0.1:{free_port()}"  # what the environment says: wrong
    env = stack.env(SLUICE_API_PORT=str(port), SLUICE_API_URL=dead)
    log = tmp_path / "run.log"
    process = start_run(env, log)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process, log)
        deadline = time.monotonic() + 30  # the welcome follows the first answer to /api/health
        while "bin/sluice submit" not in (said := log.read_text()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert f"API: http://127.0.0.1:{port}" in said
        hint = next(line for line in said.splitlines() if "bin/sluice submit" in line)
        args = hint.split()[1:]  # as pasted, but with this interpreter
        assert args[-2:] == ["--api-url", f"http://127.0.0.1:{port}"], hint
        done = sluice(*args, "--json", env=env)
        assert _json(done)["status"] == "completed"
    finally:
        stop(process)
