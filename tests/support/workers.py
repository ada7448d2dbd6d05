"""Sluice worker processes for the tests, isolated by app id, data folder and DB schema."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.devbroker import free_port

REPO = Path(__file__).resolve().parents[2]
# Every test stack's workers make sure this admin key of the default tenant exists
# (SLUICE_DEV_API_KEY), and http() sends it unless told otherwise.
TEST_API_KEY = "sluice_test-key-of-the-default-tenant-0000000000"


def run_cli(
    args: list[str] | tuple[str, ...], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The `sluice` command as a person runs it: a process of its own, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "api", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def http(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 120,
    key: str | None = TEST_API_KEY,
) -> tuple[int, Any]:
    """One request; `key` goes in `Authorization` (None: no key) unless `headers` has one."""
    sent = {**(bearer(key) if key else {}), **(headers or {})}
    request = urllib.request.Request(url, data=body, method=method, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            raw = answer.read()
            status = answer.status
            kind = answer.headers.get_content_type()
            headers_out = dict(answer.headers)
    except urllib.error.HTTPError as error:
        raw, status = error.read(), error.code
        kind = error.headers.get_content_type()
        headers_out = dict(error.headers)
    payload: Any = json.loads(raw) if kind == "application/json" and raw else raw
    if isinstance(payload, dict):
        payload.setdefault("_headers", headers_out)
    return status, payload


@dataclass
class Worker:
    port: int
    env: dict[str, str]
    log_path: Path
    extra_args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Worker:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            # -v: Faust's own lines too, for a failing test's log tail
            [
                sys.executable,
                "-m",
                "api",
                "worker",
                "-v",
                "--port",
                str(self.port),
                *self.extra_args,
            ],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    def wait_ready(self, timeout: float = 90) -> Worker:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(
                    f"worker exited with {self.process.returncode}:\n{self.tail()}"
                )
            try:
                status, _ = http("GET", f"{self.url}/api/health", timeout=2)
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"worker on {self.port} not ready after {timeout}s:\n{self.tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def metric(self, name: str, labels: str = "") -> float:
        _, text = http("GET", f"{self.url}/metrics")
        wanted = f"{name}{{{labels}}}" if labels else name
        for line in text.decode().splitlines():
            if line.startswith(wanted + " "):
                return float(line.split()[-1])
        return 0.0


@dataclass
class Stack:
    """Everything one test's workers share: broker, database schema, app id, folders."""

    bootstrap_servers: str
    database_url: str
    app_id: str
    workdir: Path
    workers: list[Worker] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=self.bootstrap_servers,
            DATABASE_URL=self.database_url,
            SLUICE_APP_ID=self.app_id,
            SLUICE_DATA_DIR=str(self.workdir / "data"),
            SLUICE_PARTITIONS="4",
            SLUICE_IDLE_SECONDS="3",
            SLUICE_DEV_API_KEY=TEST_API_KEY,
            SLUICE_API_KEY=TEST_API_KEY,  # for the sluice command
            PYTHONUNBUFFERED="1",
        )
        env.update(extra)
        return env

    def worker(self, port: int | None = None, *args: str, **env: str) -> Worker:
        port = port or free_port()
        worker = Worker(
            port,
            self.env(SLUICE_API_PORT=str(port), **env),
            self.workdir / f"worker-{port}.log",
            list(args),
        )
        self.workers.append(worker)
        return worker.start()

    def stop_all(self) -> None:
        for worker in self.workers:
            worker.stop()

    # -- the API, as a client would use it ---------------------------------------------------

    def api_key(self, worker: Worker, tenant: str, *scopes: str) -> str:
        """A new key of `tenant` (default scopes: submit, read), made through the API."""
        body = {"tenant": tenant, **({"scopes": list(scopes)} if scopes else {})}
        status, answer = http(
            "POST",
            f"{worker.url}/api/keys",
            json.dumps(body).encode(),
            {"Content-Type": "application/json"},
        )
        assert status == 201, (status, answer)
        return str(answer["key"])

    def submit_csv(self, worker: Worker, body: bytes, **options: Any) -> dict[str, Any]:
        return self.submit(worker, body, "text/csv", **options)

    def submit(
        self, worker: Worker, body: bytes, content_type: str, **options: Any
    ) -> dict[str, Any]:
        query = "&".join(f"{k}={v}" for k, v in {"type": "user-import", **options}.items())
        status, answer = http(
            "POST", f"{worker.url}/api/batch/jobs?{query}", body, {"Content-Type": content_type}
        )
        assert status == 202, (status, answer)
        return answer

    def wait_finished(self, worker: Worker, job_id: str, timeout: float = 180) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                status, last = http("GET", f"{worker.url}/api/batch/jobs/{job_id}", timeout=10)
            except OSError as exc:
                status, last = 0, repr(exc)
            if status == 200 and last["status"] in ("completed", "failed", "cancelled"):
                return last
            time.sleep(0.25)
        raise AssertionError(
            f"job {job_id} not finished after {timeout}s; last answer {last}\n"
            + "\n".join(w.tail(30) for w in self.workers)
        )
