"""The pool of writer processes that decode, validate and apply chunks for one worker.

Decoding, validating and writing a chunk is ~17 µs of pure Python per record; the worker's own
process already spends about as much per record on uploads, Kafka and Faust, and one Python
process runs one thread at a time. So chunks are applied in a small pool of processes, each with
its own database connection: the raw Avro bytes go in, a small outcome comes back. Start method
is `spawn`: forking a process that runs Faust's consumer thread is not safe.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any

from streams.config import Settings
from streams.processing.policy import Failure
from streams.processing.writer import Applied, ApplyFailed, Blocked, apply_raw, start_writer
from streams.sink.sessions import SessionLimits
from streams.wire.origin import TenantCheck


def writer_processes(settings: Settings, dialect: str) -> int:
    """How many writer processes apply chunks: SQLite takes one writer at a time."""
    return 1 if dialect == "sqlite" else settings.writers


@contextmanager
def _sigint_blocked() -> Iterator[None]:
    """SIGINT held back in this thread, and in a writer process started meanwhile, which
    inherits the mask: Ctrl-C reaches the whole process group, and a writer still starting
    would die of it with a traceback before it can ignore it (start_writer). Held back, not
    ignored: this process gets it on leaving the block (or another of its threads takes it)."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


class WriterPool:
    def __init__(
        self,
        database_url: str,
        processes: int,
        limits: SessionLimits,
        chunk_timeout: float,
        app_id: str,
        origin_key: bytes = b"",
        upstream_tenants: frozenset[str] = frozenset(),
    ):
        self.processes = processes
        self._initargs = (database_url, limits, chunk_timeout, app_id)
        self._origin_key, self._upstream = origin_key, upstream_tenants
        self._executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=start_writer,
            initargs=self._initargs,
        )

    async def apply(
        self, value: bytes, blocked: frozenset[str], headers: Any = None
    ) -> Applied | Blocked:
        """Apply a chunk's bytes in a writer process (see streams/processing/writer.py), if
        its tenant is one its `headers` let it act for (streams/wire/origin.py); raises
        ApplyFailed. A writer process that died (killed, or stopped by its chunk
        timeout) takes the pool with it: it is started anew, and the chunks it was applying
        fail with a failure to retry."""
        loop = asyncio.get_running_loop()
        try:
            with _sigint_blocked():  # the executor starts writer processes as work comes
                running = loop.run_in_executor(
                    self._executor,
                    apply_raw,
                    value,
                    None,
                    blocked or None,
                    TenantCheck.of(self._origin_key, headers, self._upstream),
                )
            return await running
        except BrokenProcessPool as exc:
            broken, self._executor = self._executor, self._start()
            broken.shutdown(wait=False, cancel_futures=True)
            raise ApplyFailed(None, Failure(type(exc).__name__, str(exc), "transient")) from None
