"""`sluice run`, `sluice worker` and `sluice devbroker` stop everything they started. SIGTERM to
the command alone (what Docker and Kubernetes send to its PID 1, systemd to the main process)
and SIGINT to its whole process group (Ctrl-C in a terminal) leave no child or grandchild
running: not the dev broker (in a session of its own, which Ctrl-C does not reach), not a writer
process, not multiprocessing's resource tracker; and they print no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams.devbroker import free_port
from tests.e2e.test_dev_broker_port import dev_run_env
from tests.e2e.test_dev_run import wait_healthy
from tests.support.processes import LINUX, descendants, still_alive
from tests.support.workers import REPO, Stack, Worker

pytestmark = pytest.mark.skipif(not LINUX, reason="walks /proc")

UPLOAD = b"email,name\ntree-1@example.com,One\ntree-2@example.com,Two\n"


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "api", *command],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a shell gives a command
        )


def wait_said(log: Path, text: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while text not in log.read_text():
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)


def started_with_writers(stack: Stack, url: str, env: dict[str, str]) -> None:
    """A job, so that the worker has started its writer processes."""
    worker = Worker(int(url.rsplit(":", 1)[1]), env, Path(os.devnull))
    accepted = stack.submit_csv(worker, UPLOAD)
    assert stack.wait_finished(worker, accepted["jobId"])["status"] == "completed"


def running(stack: Stack, command: str, log: Path) -> tuple[subprocess.Popen[bytes], list[str]]:
    """The command running and ready, and the kinds of process it must have started."""
    if command == "devbroker":
        process = start(["devbroker", "--port", str(free_port())], stack.env(), log)
        wait_said(log, "dev broker listening on", process)
        return process, ["tansu"]
    api_port = str(free_port())
    if command == "run":
        env = {**dev_run_env(stack, free_port()), "SLUICE_API_PORT": api_port}
        kinds = ["tansu", "multiprocessing.spawn"]
    else:
        env, kinds = stack.env(SLUICE_API_PORT=api_port), ["multiprocessing.spawn"]
    process = start([command], env, log)
    url = f"http://127.0.0.1:{api_port}"
    wait_healthy(url, process, log)
    started_with_writers(stack, url, env)
    return process, kinds


@pytest.mark.parametrize("how", ["sigterm", "ctrl-c"])
@pytest.mark.parametrize("command", ["run", "worker", "devbroker"])
def test_a_stopped_command_leaves_no_process_behind(
    stack: Stack, tmp_path: Path, command: str, how: str
) -> None:
    log = tmp_path / f"{command}.log"
    process, kinds = running(stack, command, log)
    try:
        started = descendants(process.pid)
        for kind in kinds:
            assert any(kind in line for line in started.values()), (kind, started)
        if how == "sigterm":
            process.send_signal(signal.SIGTERM)
        else:
            os.killpg(process.pid, signal.SIGINT)
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    left = still_alive(started, timeout=10)
    assert not left, f"still running after {command} stopped: {left}"
    said = log.read_text()
    assert code == 0, said
    assert "Traceback" not in said, said
