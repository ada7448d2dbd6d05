"""What a worker process is doing right now: the facts `--until-idle` and metrics read."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class WorkerState:
    last_activity: float = field(default_factory=time.monotonic)
    chunks_in_flight: int = 0
    uploads_in_flight: int = 0
    results_in_flight: int = 0  # job results being made (an export's file being assembled)
    chunk_partitions: int | None = None

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    def idle_for(self) -> float:
        return time.monotonic() - self.last_activity

    @property
    def busy(self) -> bool:
        return self.chunks_in_flight > 0 or self.uploads_in_flight > 0 or self.results_in_flight > 0
