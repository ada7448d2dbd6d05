"""Standing jobs close once their day is over, with the exact count of the records they took.

The standing job of (tenant, type, UTC day D) takes the records without `sluice-batch` whose
message timestamp falls in D. A clock alone cannot say when all of them are counted: a
partition may lag, and records read may still be in chunks not applied. So it closes in three
steps, each begun after the one before:

1. The input topic has read past D: its stream time (streams/intake/days.py), from the group's
   committed offsets and the timestamps of the records before them (streams/kafka/positions.py),
   has reached the end of D plus SLUICE_STANDING_GRACE, and so has the wall clock. An input
   offset is committed only once the chunk holding its record is acknowledged on the chunk
   topic (streams/intake/splitter.py): every record of D read so far is in a chunk there.
2. The chunk topic has been processed past where it ended after step 1: the group's committed
   offsets reach the end offsets taken then. A chunk's offset is committed only once its outcome
   (applied, or dead-lettered: its records failed) is acknowledged on the progress topic
   (streams/processing/): every outcome of those chunks is on the progress topic.
3. `StandingClosed` goes to the progress topic, keyed by the job: it lands behind all those
   outcomes on the job's partition, and folding it (streams/upstream_ends.py) makes the total the
   records counted then. Counting is per distinct record: the writer drops a record that has a
   result already (a redelivered chunk, a record read again after a crash) and progress counts
   each chunk once by lane and sequence, so total = successful + failed + skipped = the distinct
   records of D read before step 1.

Nothing here is more than a shortcut: the facts are Kafka's committed offsets and the progress
table, so a restarted worker starts again at step 1, and two workers closing the same job (a
rebalance) send the same event twice, which the fold counts once. Each worker closes the jobs
whose progress it owns, learned from the progress agent as it folds them (and from its table
after an assignment or a recovery). A record of D counted after the close was late (its topic
had passed D) and reopens the job, which is then closed again the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition

from streams.agents.rescans import rescan_when_jobs_move
from streams.clock import now_ms
from streams.intake.days import is_over, last_day_over, stream_time
from streams.intake.reader import intake_group
from streams.kafka.positions import group_stands
from streams.ownership import owns
from streams.progress import State
from streams.runtime import Runtime
from streams.wire import events

log = logging.getLogger(__name__)
CHECK_INTERVAL = 2.0


@dataclass(frozen=True)
class _ReadPast:
    """Step 1 passed for a job type: every day up to `through` is over on its input topic;
    `chunk_ends`: the chunk topic's end offsets, taken after it."""

    through: str
    chunk_ends: dict[TopicPartition, int]


class StandingCloser:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.grace_ms = int(runtime.settings.standing_grace * 1000)
        self.open: dict[str, tuple[str, str]] = {}  # job → (type, day): standing, not closed
        self.read_past: dict[str, _ReadPast] = {}  # job type → its step 1, awaiting step 2
        self._rescan = True

    def consider(self, job_id: str, state: State | None) -> None:
        """After the progress agent folds an event: is the job a standing job still open?"""
        day = (state or {}).get("standingDay")
        if state is not None and day and not state.get("ended") and state.get("type"):
            self.open[job_id] = (state["type"], day)
        else:
            self.open.pop(job_id, None)

    def rescan_soon(self) -> None:
        self._rescan = True

    async def tick(self) -> None:
        app = self.runtime.app
        if app.rebalancing or app.in_recovery:
            return
        if self._rescan:  # the jobs of partitions just assigned or recovered
            self._rescan = False
            for job_id, state in list(self.runtime.progress_table.items()):
                self.consider(job_id, state)
        now = now_ms()
        due: dict[str, dict[str, str]] = {}  # job type → {job: day}
        for job_id, (job_type, day) in list(self.open.items()):
            known = job_type in self.runtime.input_topics  # else no topic can say it is over
            if known and is_over(day, now, self.grace_ms) and owns(app, job_id):
                due.setdefault(job_type, {})[job_id] = day
        for job_type in list(self.read_past):
            if job_type not in due:
                del self.read_past[job_type]
        for job_type, jobs in sorted(due.items()):
            try:
                await self._close(job_type, jobs)
            except Exception as exc:  # Kafka away or slow: the next tick starts again
                log.warning("standing jobs of %s not closed yet: %s", job_type, exc)
                self.read_past.pop(job_type, None)

    async def _close(self, job_type: str, jobs: dict[str, str]) -> None:
        """Take the next step for the due standing jobs of one type."""
        past = self.read_past.get(job_type)
        if past is None:
            through = await self._input_read_past(job_type)
            if through is None or all(day > through for day in jobs.values()):
                return
            past = _ReadPast(through, await self._chunk_topic_ends())
            self.read_past[job_type] = past
        if not await self._chunk_topic_done(past.chunk_ends):
            return
        del self.read_past[job_type]
        for job_id, day in sorted(jobs.items()):
            if day <= past.through:
                await self._send_close(job_id, day)

    async def _input_read_past(self, job_type: str) -> str | None:
        """Step 1: the last day the job type's input topic has read past, if any."""
        now = now_ms()  # before the offsets are read: see Stand.reached
        topic = self.runtime.input_topics[job_type].get_topic_name()
        group = intake_group(self.runtime.settings.app_id)  # the input topics' own consumer
        stands = await group_stands(self._probe(), group, topic, timestamps=True)
        reached = stream_time(stand.reached(now) for stand in stands) if stands else None
        return last_day_over(reached, self.grace_ms)

    async def _chunk_topic_ends(self) -> dict[TopicPartition, int]:
        topic = self.runtime.chunk_topic.get_topic_name()
        return {
            stand.tp: stand.end for stand in await group_stands(self._probe(), self._group(), topic)
        }

    async def _chunk_topic_done(self, ends: dict[TopicPartition, int]) -> bool:
        """Step 2: every chunk below `ends` is processed and committed."""
        topic = self.runtime.chunk_topic.get_topic_name()
        stands = await group_stands(self._probe(), self._group(), topic)
        return all(stand.committed >= ends.get(stand.tp, 0) for stand in stands)

    async def _send_close(self, job_id: str, day: str) -> None:
        """Step 3; the fold (and `consider`) learns the job closed, or re-opened meanwhile."""
        log.info("standing job %s of %s: its day is over and read past; closing it", job_id, day)
        value = events.standing_closed(job_id, day)
        await (await self.runtime.progress_topic.send(key=job_id, value=value))
        self.open.pop(job_id, None)

    def _probe(self) -> dict[str, Any]:
        return self.runtime.consumer.probe_options()

    def _group(self) -> str:
        return str(self.runtime.app.conf.id)


def attach(runtime: Runtime) -> StandingCloser:
    """The closer the progress agent tells of each folded job, and its timer."""
    closer = StandingCloser(runtime)

    @runtime.app.timer(CHECK_INTERVAL)
    async def close_standing_jobs() -> None:
        await closer.tick()

    rescan_when_jobs_move(runtime, closer.rescan_soon)
    return closer
