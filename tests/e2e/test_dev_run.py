"""`sluice run` as a newcomer meets it: its first start makes a development key, prints it once
and keeps it (mode 0600) where the `sluice` command finds it; the key works on the API, and a
restart keeps the same key without printing it again."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

from streams.devbroker import free_port
from tests.support.workers import REPO, Stack, http

SUBMIT_ARGS = ("--type", "user-import", "--opt", "skipDuplicates=true", "--follow")


def start_run(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "api", "run"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if http("GET", f"{url}/api/health", key=None, timeout=5)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"sluice run did not become healthy:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_the_first_start_makes_a_key_the_cli_and_api_accept_and_a_restart_keeps_it(
    stack: Stack, tmp_path: Path
) -> None:
    port = free_port()
    env = stack.env(SLUICE_API_PORT=str(port), HOME=str(tmp_path / "home"))
    del env["SLUICE_DEV_API_KEY"], env["SLUICE_API_KEY"]
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    url = f"http://127.0.0.1:{port}"
    key_file = Path(env["SLUICE_DATA_DIR"]) / "dev-api-key"

    first_log = tmp_path / "run-1.log"
    process = start_run(env, first_log)
    try:
        wait_healthy(url, process, first_log)
        said = first_log.read_text()
        assert "Traceback" not in said
        key = key_file.read_text().strip()
        assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
        assert said.count(key) == 1, said  # shown once
        assert http("GET", f"{url}/api/batch/jobs", key=key)[0] == 200
        assert http("GET", f"{url}/api/batch/jobs", key=None)[0] == 401

        # the sluice command in this folder finds the key by itself
        submitted = subprocess.run(
            [sys.executable, "-m", "api", "submit", "docs/examples/users.csv", *SUBMIT_ARGS],
            cwd=REPO,
            env={**env, "SLUICE_API_URL": url},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    finally:
        stop(process)

    second_log = tmp_path / "run-2.log"
    process = start_run(env, second_log)
    try:
        wait_healthy(url, process, second_log)
        said = second_log.read_text()
        assert key not in said and "made on the first start" in said, said
        assert key_file.read_text().strip() == key
        assert http("GET", f"{url}/api/batch/jobs", key=key)[0] == 200
    finally:
        stop(process)
