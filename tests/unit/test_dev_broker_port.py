"""`sluice run`, `sluice worker` and `sluice devbroker` on a port already in use (the dev
broker's or the API's): one line naming the port and the setting to change, exit code 78, no
traceback, and nothing started (every port is tested before Tansu or the worker runs).
`sluice config` names the address `sluice run` will use."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.cli import main


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [n for n in os.environ if n.startswith("SLUICE_")]:
        monkeypatch.delenv(name)
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/x.db")
    monkeypatch.setenv("SLUICE_DATA_DIR", str(tmp_path / "data"))


def test_sluice_run_refuses_a_dev_broker_port_in_use_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], taken_port: int
) -> None:
    monkeypatch.setenv("SLUICE_DEV_BROKER_PORT", str(taken_port))
    assert main(["run"]) == 78
    said = capsys.readouterr()
    assert said.out == ""
    assert said.err == (
        f"sluice: port {taken_port} is in use (another Kafka or Sluice?): set "
        "SLUICE_DEV_BROKER_PORT to a free port, or KAFKA_BOOTSTRAP_SERVERS to use that broker\n"
    )


def test_sluice_devbroker_refuses_a_port_in_use_in_one_line(
    capsys: pytest.CaptureFixture[str], taken_port: int
) -> None:
    assert main(["devbroker", "--port", str(taken_port)]) == 78
    said = capsys.readouterr().err
    assert said.startswith(f"sluice: port {taken_port} is in use") and said.count("\n") == 1


def test_sluice_config_names_the_dev_broker_address_sluice_run_uses(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "bootstrap_servers = 127.0.0.1:9092 (the dev broker of sluice run)" in lines
    assert "dev_broker_port = 9092" in lines
    monkeypatch.setenv("SLUICE_DEV_BROKER_PORT", "19092")
    main(["config"])
    lines = capsys.readouterr().out.splitlines()
    assert "bootstrap_servers = 127.0.0.1:19092 (the dev broker of sluice run)" in lines


def test_sluice_run_refuses_an_api_port_in_use_before_starting_anything(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], taken_port: int
) -> None:
    monkeypatch.setenv("SLUICE_API_PORT", str(taken_port))
    assert main(["run"]) == 78
    said = capsys.readouterr()
    assert said.out == ""  # no dev broker, no key, no welcome
    assert said.err == (
        f"sluice: port {taken_port} is in use (another Sluice?), so the API cannot listen on "
        f"127.0.0.1:{taken_port}: set SLUICE_API_PORT to a free port (and SLUICE_API_URL for "
        "the sluice command)\n"
    )


def test_sluice_worker_refuses_an_api_port_in_use_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], taken_port: int
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    assert main(["worker", "--port", str(taken_port)]) == 78
    said = capsys.readouterr().err
    assert said.startswith(f"sluice: port {taken_port} is in use") and said.count("\n") == 1
    assert "--port (or set SLUICE_API_PORT)" in said
