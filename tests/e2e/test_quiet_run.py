"""The README's quick start, followed word for word, is quiet: `sluice run` says where it is
once the API answers, then one line per event that matters (ready, a job accepted, a job
finished), and no Faust table or traceback, before or after the first job (whose submit command
is the one the welcome prints), through a `dlq list`, and when Ctrl-C stops it."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

from streams.devbroker import free_port
from tests.e2e.test_dev_broker_port import dev_run_env
from tests.e2e.test_dev_run import wait_healthy
from tests.e2e.test_process_tree import start
from tests.support.workers import Stack, run_cli

TABLE = re.compile(r"^\s*[+|]|[─│┌┐└┘├┤┬┴┼]")  # Faust's boxes, and any drawn with lines
EVENT = re.compile(r"^\d\d:\d\d:\d\d ")


def noise(text: str) -> list[str]:
    return [line for line in text.splitlines() if TABLE.search(line) or "Traceback" in line]


def cli(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_cli(command, env)


def wait_said(log: Path, pattern: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while not re.search(pattern, text := log.read_text(), re.MULTILINE):
        assert time.monotonic() < deadline, f"{pattern!r} not said:\n{text}"
        time.sleep(0.2)
    return text


def test_the_quick_start_shows_no_table_and_no_traceback(stack: Stack, tmp_path: Path) -> None:
    api_port = free_port()
    env = {**dev_run_env(stack, free_port()), "SLUICE_API_PORT": str(api_port)}
    url = f"http://127.0.0.1:{api_port}"
    log = tmp_path / "run.log"
    process = start(["run"], env, log)
    try:
        wait_healthy(url, process, log)
        before = wait_said(log, r"^  \.venv/bin/sluice submit ")
        assert noise(before) == [], before
        ready = [line for line in before.splitlines() if " ready: API " in line]
        assert len(ready) == 1 and EVENT.match(ready[0]), before
        # the command the welcome prints, as a person pastes it (in this checkout)
        pasted = next(line for line in before.splitlines() if "sluice submit" in line)
        words = shlex.split(pasted)
        assert words[0] == ".venv/bin/sluice", pasted
        submitted = cli(words[1:], {**env, "SLUICE_API_URL": url})
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        assert "Traceback" not in submitted.stdout + submitted.stderr
        listed = cli(["dlq", "list"], {**env, "SLUICE_API_URL": url})
        assert listed.returncode == 0, listed.stdout + listed.stderr
        after = wait_said(log, r"^\d\d:\d\d:\d\d job \S+ completed: 10 records")
    finally:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C
        code = process.wait(timeout=60)
    said = log.read_text()
    assert code == 0 and noise(said) == [], said
    events = [line for line in said[len(before) :].splitlines() if line.strip()]
    assert all(EVENT.match(line) for line in events), events
    assert [line.split(" ")[3] for line in events] == ["accepted:", "completed:"], events
    assert after in said
