"""Writer processes: decode, validate and apply chunks outside the worker's event loop.

Decoding, validating and writing a chunk is ~17 µs of pure Python per record; the worker's own
process already spends about as much per record on uploads, Kafka and Faust, and one Python
process runs one thread at a time. So chunks are applied in a small pool of processes, each with
its own database connection: the raw Avro bytes go in, a small outcome comes back. Start method
is `spawn`: forking a process that runs Faust's consumer thread is not safe.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from streams import ledger_apply
from streams.chunks import decode_chunk
from streams.exceptions import PoisonMessage
from streams.failures import classify
from streams.jobtypes import JOB_TYPES
from streams.jobtypes.base import Chunk, ChunkResult
from streams.sink.database import make_engine

__all__ = [
    "Applied",
    "ApplyFailed",
    "Blocked",
    "BrokenProcessPool",
    "ChunkInfo",
    "apply_raw",
    "writer_pool",
]


@dataclass(frozen=True)
class ChunkInfo:
    """What the worker needs to know of a chunk without its records."""

    job_id: str
    job_type: str
    chunk_index: int
    partition: int
    partition_seq: int
    options: dict[str, Any]
    rows: list[int] = field(repr=False)

    @classmethod
    def of(cls, chunk: Chunk) -> ChunkInfo:
        return cls(
            chunk.job_id,
            chunk.job_type,
            chunk.chunk_index,
            chunk.partition,
            chunk.partition_seq,
            dict(chunk.options),
            [record["row"] for record in chunk.records],
        )


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
    """Applying failed; carries what the worker decides with (pickles across processes), and
    the chunk's keys when it could be decoded, so later chunks on the same keys wait for it."""

    def __init__(
        self,
        info: ChunkInfo | None,
        error_class: str,
        message: str,
        retry: bool,
        keys: frozenset[str] | None = None,
    ):
        super().__init__(info, error_class, message, retry, keys)
        self.info, self.error_class, self.message, self.retry = info, error_class, message, retry
        self.keys = keys

    def __str__(self) -> str:
        return f"{self.error_class}: {self.message}"


_engine: Engine | None = None


def _init(database_url: str) -> None:
    global _engine
    _engine = make_engine(database_url, pool_size=1, create=False)
    from streams.worker import tune_gc

    tune_gc()
    _exit_with_parent()


def _exit_with_parent(interval: float = 1.0) -> None:
    """A writer whose worker was killed (SIGKILL, OOM) would wait for work forever, holding a
    database connection: the pool's queues never see end-of-file, as every writer holds their
    ends too. So each writer leaves as soon as it is orphaned."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


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


def apply_raw(
    data: bytes, engine: Engine | None = None, blocked: frozenset[str] | None = None
) -> Applied | Blocked:
    """Decode and apply one chunk (in a writer process, or in-process with `engine`); a chunk
    sharing a key with `blocked` is not applied."""
    engine = engine or _engine
    assert engine is not None, "writer process not initialised"
    try:
        chunk = decode_chunk(data)
    except PoisonMessage as exc:
        raise ApplyFailed(None, type(exc).__name__, str(exc), retry=False) from None
    info = ChunkInfo.of(chunk)
    if blocked:
        keys = chunk_keys(chunk)
        if not keys.isdisjoint(blocked):
            return Blocked(info, keys)
    try:
        result, fresh = ledger_apply.apply(engine, chunk)
    except Exception as exc:  # the worker decides; the exception itself may not pickle
        retry = classify(exc).retry
        touched = chunk_keys(chunk) if retry else None
        raise ApplyFailed(info, type(exc).__name__, str(exc), retry, touched) from None
    return Applied(info, result, fresh)


def writer_pool(database_url: str, writers: int) -> Executor:
    return ProcessPoolExecutor(
        max_workers=writers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init,
        initargs=(database_url,),
    )
