"""Inside a writer process: decode a chunk, hold it back if it shares a key with a parked one,
else apply it in one transaction; answer with a small, picklable outcome.

Raw Avro bytes come in; what goes back is `Applied`, `Blocked`, or the exception `ApplyFailed`
carrying a classified `Failure` (the original exception may not pickle).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from dataclasses import dataclass

from sqlalchemy import Engine

from streams.exceptions import PoisonMessage
from streams.jobtypes import JOB_TYPES
from streams.memory import tune_gc
from streams.models import Chunk, ChunkInfo, ChunkResult
from streams.processing.policy import Failure, classify
from streams.processing.transaction import apply_once
from streams.sink import jobs as job_registry
from streams.sink.database import make_engine
from streams.sink.sessions import (
    LOCK_NOT_AVAILABLE,
    SessionLimits,
    end_abandoned_writers,
    session_name,
)
from streams.wire.chunks import decode_chunk
from streams.wire.origin import TenantCheck


@dataclass(frozen=True)
class Applied:
    info: ChunkInfo
    result: ChunkResult
    fresh: bool  # False: the ledger says it was applied before


@dataclass(frozen=True)
class Blocked:
    """Not applied: it shares keys with an earlier chunk of its partition waiting for a retry."""

    info: ChunkInfo
    keys: frozenset[str]


class ApplyFailed(Exception):
    """Applying failed: the failure, the chunk when it could be decoded, and the keys its
    records write when they are known (so later chunks on the same keys wait for it)."""

    def __init__(
        self, info: ChunkInfo | None, failure: Failure, keys: frozenset[str] | None = None
    ):
        super().__init__(info, failure, keys)
        self.info, self.failure, self.keys = info, failure, keys

    def __str__(self) -> str:
        return str(self.failure)


EXIT_CHUNK_TIMEOUT = 70

_engine: Engine | None = None
_app_id = "sluice"
_chunk_timeout = 180.0
_applying_since: float | None = None  # monotonic start of the chunk being applied, if any


def start_writer(
    database_url: str, limits: SessionLimits, chunk_timeout: float, app_id: str
) -> None:
    """A writer process's initializer: its own database connection, held to `limits`, and a
    watch that ends the process when it must not go on."""
    global _engine, _chunk_timeout, _app_id
    # Ctrl-C reaches the whole process group: the worker stops its writers itself, after the
    # chunks they are applying (a KeyboardInterrupt here would only print a traceback). The
    # pool started this process with SIGINT held back (pool.py): ignored from now on, let go.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _chunk_timeout, _app_id = chunk_timeout, app_id
    name = session_name("writer", app_id, os.getpid())
    _engine = make_engine(database_url, pool_size=1, create=False, limits=limits, name=name)
    tune_gc()
    _watch(chunk_timeout)


def _watch(chunk_timeout: float, interval: float = 1.0) -> None:
    """The writer leaves when
    - its worker is gone (SIGKILL, OOM): it would wait for work forever, holding a database
      connection, as the pool's queues never see end-of-file (every writer holds their ends);
    - one chunk has been applying for longer than `chunk_timeout`: its connection may be
      black-holed, where no server timeout and no keepalive ever ends a blocking read. Only
      the process can be stopped from outside that read; the worker sees its pool break and
      retries the chunk (its transaction never committed, so nothing is applied twice)."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                os._exit(0)
            since = _applying_since
            if since is not None and time.monotonic() - since > chunk_timeout:
                print(
                    f"writer {os.getpid()}: one chunk has been applying for more than "
                    f"{chunk_timeout:g} s (SLUICE_CHUNK_TIMEOUT); stopping so that it is retried",
                    file=sys.stderr,
                    flush=True,
                )
                os._exit(EXIT_CHUNK_TIMEOUT)

    threading.Thread(target=watch, name="writer-watch", daemon=True).start()


def chunk_keys(chunk: Chunk) -> frozenset[str]:
    """The routing keys of a chunk's readable records: what its writes touch."""
    job_type = JOB_TYPES.get(chunk.job_type)
    if job_type is None:
        return frozenset()
    keys = set()
    for record in chunk.records:
        if record["fields"] is not None:
            try:
                key = job_type.routing_key(record["fields"])
            except (TypeError, ValueError, AttributeError):
                continue  # a record that fails validation writes nothing
            if key is not None:
                keys.add(key)
    return frozenset(keys)


def _check_known_job(engine: Engine, chunk: Chunk) -> None:
    """A chunk Sluice did not mark must name a job Sluice made (the chunk topic is internal)."""
    if job_registry.get_job(engine, chunk.job_id) is None:
        raise PoisonMessage(
            f"jobId: job {chunk.job_id} was not created by Sluice; the chunk topic is internal: "
            "produce records to the input topics (docs/upstream.md)"
        )


def apply_raw(
    data: bytes,
    engine: Engine | None = None,
    blocked: frozenset[str] | None = None,
    tenants: TenantCheck | None = None,
) -> Applied | Blocked:
    """Decode and apply one chunk (in a writer process, or in-process with `engine`); a chunk
    sharing a key with `blocked` is not applied, nor one naming a tenant `tenants` refuses
    (it is counted in no job: whoever made it may not speak for that job)."""
    engine = engine or _engine
    assert engine is not None, "writer process not initialised"
    try:
        chunk = decode_chunk(data)
        if tenants is not None:
            tenants.check(chunk)
            if not tenants.vouches(chunk):
                _check_known_job(engine, chunk)
    except Exception as exc:  # poison, or the registry away: counted in no job (yet)
        raise ApplyFailed(None, classify(exc)) from None
    info = ChunkInfo.of(chunk)
    if blocked:
        keys = chunk_keys(chunk)
        if not keys.isdisjoint(blocked):
            return Blocked(info, keys)
    global _applying_since
    _applying_since = time.monotonic()
    try:
        result, fresh = apply_once(engine, chunk)
    except Exception as exc:  # the worker decides; the exception itself may not pickle
        failure = classify(exc)
        if getattr(getattr(exc, "orig", None), "pgcode", None) == LOCK_NOT_AVAILABLE:
            _release_abandoned_locks(engine)
        touched = chunk_keys(chunk) if failure.retryable else None
        raise ApplyFailed(info, failure, touched) from None
    finally:
        _applying_since = None
    return Applied(info, result, fresh)


def _release_abandoned_locks(engine: Engine) -> None:
    """A lock wait ran out: the holder may be an abandoned writer session; end those."""
    try:
        ended = end_abandoned_writers(engine, _app_id, _chunk_timeout)
    except Exception as exc:  # the chunk is retried either way
        print(f"writer {os.getpid()}: no look for abandoned sessions: {exc}", file=sys.stderr)
        return
    if ended:
        print(f"writer {os.getpid()}: ended abandoned writer sessions {ended}", file=sys.stderr)
