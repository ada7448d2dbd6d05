"""`estimatedTime` in a submission's 202: how long the job should still take, from how fast
recent jobs of its type went on this deployment.

The rate is the median records/s of the last `RECENT_JOBS` completed API jobs of the type with at
least `MIN_RECORDS` records, each measured from its registration (the start of its upload) to
its completion, so it holds the upload, the chunks and everything else a job waits for. The
median, not the mean: a job reopened by a replay hours later completes again, and its one
absurd rate must not move the estimate. Small jobs are left out, as their fixed costs (a group
of chunks waiting for a batch, a status write) would make large jobs look slow. A job that has
no such predecessor is estimated at `FALLBACK_RECORDS_PER_SECOND`. The 202 comes once the
upload is in, so the time the upload already took is subtracted. Rates are read at most once a
`REFRESH_SECONDS` per job type and process, and a registry that cannot be read leaves the
last rate (or the fallback): an estimate never fails a submission.
"""

from __future__ import annotations

import asyncio
import logging
import math
import statistics
import time
from collections.abc import Callable, Iterable

from sqlalchemy import Engine

from streams.sink.durations import Duration, recent_durations

log = logging.getLogger(__name__)

RECENT_JOBS = 20
MIN_RECORDS = 1_000
FALLBACK_RECORDS_PER_SECOND = 20_000.0
REFRESH_SECONDS = 60.0
READ_TIMEOUT = 1.0  # the 202 waits no longer for its estimate


def measured_rate(durations: Iterable[Duration]) -> float | None:
    """The median records/s of these jobs; None when there is none to measure."""
    rates = [records / seconds for records, seconds in durations if seconds > 0 and records > 0]
    return statistics.median(rates) if rates else None


def estimate_seconds(total_records: int, rate: float, elapsed: float = 0.0) -> int:
    """Whole seconds still to go for a job of `total_records` at `rate` records/s, `elapsed`
    seconds after it began; at least 1."""
    return max(1, math.ceil(total_records / rate - elapsed))


class RateBook:
    """The measured rate of each job type, read from the registry at most once a refresh."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._rates: dict[str, tuple[float, float]] = {}  # type -> (rate, when read)

    async def rate(self, engine: Engine, job_type: str) -> float:
        known = self._rates.get(job_type)
        if known is not None and self._clock() - known[1] < REFRESH_SECONDS:
            return known[0]
        rate = known[0] if known is not None else FALLBACK_RECORDS_PER_SECOND
        try:
            read = asyncio.to_thread(
                recent_durations, engine, job_type, limit=RECENT_JOBS, min_records=MIN_RECORDS
            )
            rate = measured_rate(await asyncio.wait_for(read, READ_TIMEOUT)) or rate
        except Exception as exc:  # an estimate is no reason to fail or hold up a submission
            log.info("estimatedTime: recent %s jobs not read (%r)", job_type, exc)
        self._rates[job_type] = (rate, self._clock())  # a registry away is asked again later
        return rate


RATES = RateBook()  # one per process: every submission of this worker shares it
