"""The embedded broker itself: it listens on and advertises exactly the address asked for (a
Kafka client bootstrapping there gets metadata naming the same host and port), and a port
taken by another listener is a PortInUse, whether found before Tansu starts or by Tansu, which
prints "listening" and then exits with code 0 when its bind fails."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient

import streams.devbroker as devbroker
from streams.devbroker import free_port, port_free, start_dev_broker
from streams.exceptions import PortInUse


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


def test_a_client_bootstrapping_to_the_broker_is_told_the_same_address() -> None:
    port = free_port()
    broker = start_dev_broker(port=port)
    try:
        assert broker.bootstrap_servers == f"127.0.0.1:{port}"
        metadata = AdminClient({"bootstrap.servers": broker.bootstrap_servers}).list_topics(
            timeout=10
        )
        assert [(b.host, b.port) for b in metadata.brokers.values()] == [("127.0.0.1", port)]
    finally:
        broker.stop()
    assert port_free("127.0.0.1", port)


def test_a_port_in_use_is_refused_before_the_broker_starts(taken_port: int) -> None:
    with pytest.raises(PortInUse) as caught:
        start_dev_broker(port=taken_port)
    assert (caught.value.host, caught.value.port) == ("127.0.0.1", taken_port)


def test_a_broker_that_cannot_bind_is_refused_not_mistaken_for_ready(
    monkeypatch: pytest.MonkeyPatch, taken_port: int
) -> None:
    """Another listener takes the port between the check and Tansu's bind: that listener
    answers on the port, but the broker is gone."""
    checks: list[int] = []

    def free_at_first_only(host: str, port: int) -> bool:
        checks.append(port)
        return len(checks) == 1 or port_free(host, port)

    monkeypatch.setattr(devbroker, "port_free", free_at_first_only)
    with pytest.raises(PortInUse):
        start_dev_broker(port=taken_port)
    assert len(checks) == 2
