"""At start-up: has the broker lost what it held? The jobs it lost end failed, saying so.

Kafka holds every unfinished job's chunks, the progress events that count them (and the
progress table's changelog) and the dead letters; the database holds the job registry, the
ledger of applied chunks and the per-record results. The embedded dev broker keeps everything
in memory, so a restarted `sluice run` (or `sluice devbroker`) meets a broker holding nothing
while the database remembers jobs: finished ones answer from the state their registry row keeps
(streams/kept.py), but unfinished ones would wait forever for chunks that are gone.

The rule. Before a worker consumes or serves anything (`check`), it declares the broker's data
lost only when both hold:

1. the app's progress topic has never held a record: it does not exist, or every partition of
   it starts and ends at offset 0. Every job is announced there before any chunk of it is sent,
   and a log whose old records retention removed no longer starts at 0: a broker that held any
   job of this app fails this test, whatever its age.
2. the broker does not hold the mark the registry remembers for this app
   (`sluice_broker_marks`): a UUID put on `<app>.mark` (compacted, keyed by the mark: it stays)
   before the registry remembered it. The first worker of an app writes one before any job
   exists, so a new app's first topic job (registered before its announcement) is never taken
   for lost.

A healthy cluster fails both: it kept its mark and every job's announcement. Deleting the
progress and mark topics, or pointing the workers at another cluster with the same database, is
taken for a loss, which it is for the jobs in flight. Workers that outlive a broker restart keep
tables whose changelogs are gone: restart them too (`sluice run` restarts both together).

When both hold, the worker puts a new mark on the topic and then, in one transaction, replaces
the remembered mark with it (only if the registry still remembers the one it read: of workers
starting together exactly one declares the loss) and settles every job registered before its
check began (streams/sink/lost.py): an unfinished one ends `failed` with `kept.LOST_REASON`, its
counts what the ledger and the results say was applied (rows and results stay); a finished one
from before the registry kept states gets one from the same; and each counts its dead-lettered
chunks as lost (`summary.deadLettersLost`: the dead-letter topic went with the broker). When the
broker is not found lost, a missing mark is written. A check that cannot finish (the broker does
not answer) changes nothing: it is logged, and the worker starts as it would have.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine

from streams import topics
from streams.clock import to_ms
from streams.config import Settings
from streams.kafka import marks
from streams.kept import LOST_REASON, as_text, settled_state
from streams.progress import FINISHED
from streams.retention import expires_at
from streams.sink import lost
from streams.sink.jobs import JobRecord

log = logging.getLogger(__name__)
CHECK_SECONDS = 30.0


def check(settings: Settings, engine: Engine) -> None:
    """The check, on an event loop of its own, before the worker's starts."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(_check(settings, engine), CHECK_SECONDS))
    except Exception as exc:
        log.warning(
            "could not tell whether the broker kept its data (%s): unfinished jobs are left "
            "as they are",
            exc or type(exc).__name__,
        )
    finally:
        loop.close()


async def _check(settings: Settings, engine: Engine) -> None:
    app, servers = settings.app_id, settings.bootstrap_servers
    mark_topic = topics.mark_topic(app)
    began = datetime.now(UTC)
    remembered = lost.remembered_mark(engine, app)
    seen = await marks.look(servers, topics.progress_topic(app), mark_topic)
    if remembered is not None and remembered in seen.marks:
        return
    if seen.progress_written:  # it holds this app's jobs: nothing was lost
        mark = remembered or lost.new_mark()
        await marks.write_mark(servers, mark_topic, mark, settings.replication_factor)
        if remembered is None:
            with engine.begin() as connection:
                lost.replace_mark(connection, app, None, mark, lost=False)
        return
    mark = lost.new_mark()
    await marks.write_mark(servers, mark_topic, mark, settings.replication_factor)
    settled = declare_loss(engine, settings, remembered, mark, began)
    if settled is not None and any(settled):
        log.warning(
            "the broker holds nothing of what it held (a restarted dev broker?): %d unfinished "
            "job(s) failed, %d dead letter(s) lost; finished jobs answer from the database",
            *settled,
        )


def declare_loss(
    engine: Engine, settings: Settings, old: str | None, new: str, began: datetime
) -> tuple[int, int] | None:
    """Remember mark `new` instead of `old` and settle every job registered before `began`:
    (jobs failed, dead letters lost); None when another worker declared the loss first."""
    now = datetime.now(UTC)
    failed = dead_letters = 0
    with engine.begin() as connection:
        if not lost.replace_mark(connection, settings.app_id, old, new, lost=True):
            return None
        for job in lost.registered_before(connection, began):
            ended, gone = _settle(connection, settings, job, now)
            failed += ended
            dead_letters += gone
    return failed, dead_letters


def _settle(
    connection: Connection, settings: Settings, job: JobRecord, now: datetime
) -> tuple[bool, int]:
    """Settle one job after a loss: (whether it failed now, its dead letters lost)."""
    finished = job.status in FINISHED
    if finished and job.kept_state is not None:
        gone = len(job.kept_state.get("deadLetters", {}))
        if gone:
            lost.settle(connection, job.id, {"dead_letters_lost": gone})
        return False, gone
    applied = lost.applied(connection, job.id)
    gone = len(applied.dead_chunks)
    if finished:  # it ended before the registry kept what it counted: the ledger says it
        kept = settled_state(job, applied, job.error, to_ms(job.completed_at or now))
        lost.settle(connection, job.id, {"kept_state": as_text(kept), "dead_letters_lost": gone})
        return False, gone
    error = job.error or LOST_REASON
    kept = settled_state(job, applied, error, to_ms(now))
    values = {
        "status": "failed",
        "error": error,
        "completed_at": now,
        "expires_at": expires_at(settings, "failed", now),
        "kept_state": as_text(kept),
        "dead_letters_lost": gone,
    }
    lost.settle(connection, job.id, values)
    return True, gone
