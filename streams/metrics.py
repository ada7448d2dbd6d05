"""The metrics object: one per process, on an explicit registry, with fixed label sets.

Never a job id as a label: cardinality would grow with every job.
"""

from __future__ import annotations

from functools import lru_cache

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        self.records = Counter(
            "sluice_records_total",
            "Records applied, by job type and outcome (successful, failed, skipped)",
            ["job_type", "outcome"],
            registry=self.registry,
        )
        self.chunks = Counter(
            "sluice_chunks_total",
            "Chunks handled, by result (applied, redelivered, retried, dead_lettered)",
            ["result"],
            registry=self.registry,
        )
        self.chunk_seconds = Histogram(
            "sluice_chunk_apply_seconds",
            "Time to validate and write one chunk, in its database transaction",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.uploads = Counter(
            "sluice_uploads_total",
            "Batch requests, by result (accepted, rejected, unavailable)",
            ["result"],
            registry=self.registry,
        )
        self.submitted_records = Counter(
            "sluice_submitted_records_total",
            "Records split into chunks",
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "sluice_queue_depth",
            "Messages waiting on this worker's assigned partitions (high watermark - committed)",
            ["topic"],
            registry=self.registry,
        )

    def declare_labels(self) -> None:
        """Every fixed label value exists from the start, so a first event is a visible
        increase (Prometheus' increase() ignores a series' first sample)."""
        for result in ("applied", "redelivered", "retried", "dead_lettered"):
            self.chunks.labels(result)
        for result in ("accepted", "rejected", "unavailable"):
            self.uploads.labels(result)


@lru_cache(maxsize=1)
def metrics() -> Metrics:
    built = Metrics()
    built.declare_labels()
    return built
