"""The stall watch: chunks in flight for too long, partitions without progress, and chunks
waiting for the database, counted in metrics and logged, so a stall is visible before anyone
asks (infra/prometheus/alerts.yml alerts on them)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import TopicPartition

from streams.kafka.commit_guard import CommitGuard
from streams.metrics import metrics
from streams.processing.parking import Parked

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stalls:
    chunks: list[Parked]  # in flight for longer than the limit
    partitions: list[TopicPartition]  # work in flight, no chunk done for longer than the limit
    waiting: int  # chunks waiting for the database


def find_stalls(
    in_flight: Iterable[Parked], guard: CommitGuard, now: float, seconds: float
) -> Stalls:
    entries = list(in_flight)
    return Stalls(
        chunks=[entry for entry in entries if now - entry.since > seconds],
        partitions=guard.stalled(now, seconds),
        waiting=sum(1 for entry in entries if entry.waits),
    )


class StallWatch:
    def __init__(self, guard: CommitGuard, seconds: float):
        self.guard = guard
        self.seconds = seconds
        self._last_report = 0.0

    def check(self, in_flight: Iterable[Parked]) -> Stalls:
        now = time.monotonic()
        stalls = find_stalls(in_flight, self.guard, now, self.seconds)
        metrics().chunks_stalled.set(len(stalls.chunks))
        metrics().partitions_stalled.set(len(stalls.partitions))
        metrics().chunks_waiting.set(stalls.waiting)
        if (stalls.chunks or stalls.partitions) and now - self._last_report >= self.seconds:
            self._last_report = now
            log.warning(
                "stalled for more than %.0f s: %d chunk(s) [%s], %d partition(s) [%s]; "
                "%d chunk(s) waiting for the database",
                self.seconds,
                len(stalls.chunks),
                ", ".join(_describe(entry, now) for entry in stalls.chunks[:10]),
                len(stalls.partitions),
                ", ".join(f"{tp.topic}[{tp.partition}]" for tp in stalls.partitions[:10]),
                stalls.waiting,
            )
        return stalls


def _describe(entry: Parked, now: float) -> str:
    message, info = entry.message, entry.info
    place = f"{message.topic}[{message.partition}]@{message.offset}"
    job = f" job {info.job_id} chunk {info.chunk_index}" if info else ""
    return f"{place}{job} {now - entry.since:.0f}s, {entry.attempts} failed, {entry.waits} waits"
