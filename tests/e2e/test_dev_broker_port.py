"""`sluice run` serves Kafka where upstream clients are told to look: on SLUICE_DEV_BROKER_PORT,
advertising that same address, with Sluice's topics on it; and a port in use stops it with one
line and no traceback. (Never 9092 here: test processes run in parallel.)"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient

from streams.devbroker import free_port, port_free
from streams.topics import chunk_topic
from tests.e2e.test_dev_run import start_run, stop, wait_healthy
from tests.support.workers import REPO, Stack


def dev_run_env(stack: Stack, broker_port: int) -> dict[str, str]:
    env = stack.env(SLUICE_API_PORT=str(free_port()), SLUICE_DEV_BROKER_PORT=str(broker_port))
    del env["KAFKA_BOOTSTRAP_SERVERS"]
    return env


def topics_on(servers: str, wanted: str, timeout: float = 30) -> set[str]:
    admin = AdminClient({"bootstrap.servers": servers})
    deadline = time.monotonic() + timeout
    while True:
        metadata = admin.list_topics(timeout=10)
        brokers = {(b.host, b.port) for b in metadata.brokers.values()}
        host, port = servers.split(":")
        assert brokers == {(host, int(port))}, brokers
        if wanted in metadata.topics or time.monotonic() > deadline:
            return set(metadata.topics)
        time.sleep(0.5)


def test_sluice_run_serves_kafka_on_the_configured_port(stack: Stack, tmp_path: Path) -> None:
    broker_port = free_port()
    env = dev_run_env(stack, broker_port)
    log = tmp_path / "run.log"
    process = start_run(env, log)
    try:
        wait_healthy(f"http://127.0.0.1:{env['SLUICE_API_PORT']}", process, log)
        first_lines = log.read_text().splitlines()[:3]
        assert f"Kafka 127.0.0.1:{broker_port} (embedded dev broker)" in first_lines[0]
        topics = topics_on(f"127.0.0.1:{broker_port}", chunk_topic(stack.app_id))
        assert chunk_topic(stack.app_id) in topics, topics
    finally:
        stop(process)
    assert process.returncode is not None
    assert port_free("127.0.0.1", broker_port)  # the dev broker stopped with it


def test_sluice_run_on_a_port_in_use_says_so_in_one_line(stack: Stack) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        taken = int(listener.getsockname()[1])
        done = subprocess.run(
            [sys.executable, "-m", "api", "run"],
            cwd=REPO,
            env=dev_run_env(stack, taken),
            capture_output=True,
            text=True,
            timeout=60,
        )
    said = done.stdout + done.stderr
    assert done.returncode == 78, said
    assert "Traceback" not in said and said.count("\n") == 1, said
    assert f"port {taken} is in use" in said and "SLUICE_DEV_BROKER_PORT" in said
