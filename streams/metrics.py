"""The metrics object: one per process, on an explicit registry, with fixed label sets.

Never a job id as a label: cardinality would grow with every job.
"""

from __future__ import annotations

from functools import lru_cache

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

HELP = {
    "sluice_records_total": "Records applied, by job type and outcome (successful, failed, "
    "skipped)",
    "sluice_chunks_total": "Chunks handled, by result (applied, redelivered, retried, waited: "
    "for the database, dead_lettered)",
    "sluice_chunk_apply_seconds": "Time to validate and write one chunk, in its database "
    "transaction",
    "sluice_uploads_total": "Batch requests, by result (accepted, rejected, unavailable)",
    "sluice_submitted_records_total": "Records split into chunks",
    "sluice_queue_depth": "Messages waiting on this worker's assigned partitions (high "
    "watermark - committed)",
    "sluice_chunks_stalled": "Chunks in flight on this worker for longer than SLUICE_STALL_SECONDS",
    "sluice_partitions_stalled": "Partitions with work in flight and no chunk done for longer "
    "than SLUICE_STALL_SECONDS",
    "sluice_chunks_waiting": "Chunks waiting for the database to come back",
}
APPLY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        self.records = self._counter("sluice_records_total", "job_type", "outcome")
        self.chunks = self._counter("sluice_chunks_total", "result")
        self.uploads = self._counter("sluice_uploads_total", "result")
        self.submitted_records = self._counter("sluice_submitted_records_total")
        name = "sluice_queue_depth"
        self.queue_depth = Gauge(name, HELP[name], ["topic"], registry=self.registry)
        self.chunks_stalled = self._gauge("sluice_chunks_stalled")
        self.partitions_stalled = self._gauge("sluice_partitions_stalled")
        self.chunks_waiting = self._gauge("sluice_chunks_waiting")
        name = "sluice_chunk_apply_seconds"
        self.chunk_seconds = Histogram(
            name, HELP[name], buckets=APPLY_BUCKETS, registry=self.registry
        )

    def _counter(self, name: str, *labels: str) -> Counter:
        return Counter(name, HELP[name], labels, registry=self.registry)

    def _gauge(self, name: str) -> Gauge:
        return Gauge(name, HELP[name], registry=self.registry)

    def declare_labels(self) -> None:
        """Every fixed label value exists from the start, so a first event is a visible
        increase (Prometheus' increase() ignores a series' first sample)."""
        for result in ("applied", "redelivered", "retried", "waited", "dead_lettered"):
            self.chunks.labels(result)
        for result in ("accepted", "rejected", "unavailable"):
            self.uploads.labels(result)


@lru_cache(maxsize=1)
def metrics() -> Metrics:
    built = Metrics()
    built.declare_labels()
    return built
