"""Assemble an export's parts into its one `.gz` file, and describe it (the job's result).

Runs once every chunk of the job is counted, in a thread of the worker owning the job's progress
(streams/agents/finish.py). Parts are copied in chunk order, block by block (bounded memory),
between the format's head, separators and tail (streams/exports/formats.py), into a temporary
file renamed into place; the byte count and SHA-256 are taken on the way. Which parts exist, and
how many rows each holds, is read from the chunk ledger: a chunk that was dead-lettered has no
ledger row and no part. Doing it again is harmless: `result.json` remembers the ledger it was
made from, and the same ledger gives back the same result without copying anything. Parts are
removed once the file is there, unless a dead-lettered chunk may still be replayed (a replayed
chunk brings a new part, and the file is assembled again from all of them).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select

from streams.clock import iso
from streams.exports import formats
from streams.exports.storage import ExportStorage, part_name
from streams.sink.tables import chunks, jobs

COPY_BLOCK = 1 << 20


class ExportIncomplete(Exception):
    """A part the ledger names is not in the export directory."""


@dataclass(frozen=True)
class Ledger:
    parts: list[tuple[int, int]]  # (chunk index, rows written), in chunk order
    total_chunks: int | None

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.parts).encode()).hexdigest()

    @property
    def complete(self) -> bool:
        """Every chunk applied (none dead-lettered): the file cannot change any more."""
        return self.total_chunks is not None and len(self.parts) == self.total_chunks


def read_ledger(engine: Engine, job_id: str) -> Ledger:
    with engine.connect() as connection:
        rows = connection.execute(
            select(chunks.c.chunk_index, chunks.c.successful)
            .where(chunks.c.job_id == job_id)
            .order_by(chunks.c.chunk_index)
        ).all()
        total = connection.execute(select(jobs.c.total_chunks).where(jobs.c.id == job_id)).scalar()
    return Ledger([(int(index), int(written)) for index, written in rows], total)


@dataclass(frozen=True)
class Assembled:
    name: str
    records: int
    bytes: int
    sha256: str


def assemble(
    storage: ExportStorage, job_id: str, fmt: str, parts: Sequence[tuple[int, int]]
) -> Assembled:
    """Write the export file from its parts; raises ExportIncomplete when one is missing."""
    name = formats.file_name(fmt)
    digest = hashlib.sha256()
    size = 0
    records = 0
    with storage.write(job_id, name) as out:

        def emit(data: bytes) -> None:
            nonlocal size
            out.write(data)
            digest.update(data)
            size += len(data)

        emit(formats.member(formats.head(fmt)))
        separator = formats.separator(fmt)
        first = True
        for index, rows in parts:
            if rows == 0:
                continue  # nothing written (skipped ids only): harmless, but nothing to copy
            if separator and not first:
                emit(formats.member(separator))
            try:
                part = storage.open(job_id, part_name(index))
            except FileNotFoundError:
                raise ExportIncomplete(
                    f"the part of chunk {index} is missing: every worker must see the same "
                    "SLUICE_EXPORT_DIR"
                ) from None
            with part:
                while block := part.read(COPY_BLOCK):
                    emit(block)
            records += rows
            first = False
        tail = formats.tail(fmt)
        if tail:
            emit(formats.member(tail))
    return Assembled(name, records, size, digest.hexdigest())


def finish_export(
    engine: Engine,
    storage: ExportStorage,
    job_id: str,
    fmt: str,
    url_seconds: int,
    now: float | None = None,
) -> dict[str, Any]:
    """The export's result `{recordCount, download: {file, expires}, expiresAt, bytes, sha256}`
    (the API turns `download` into a URL signed for the job's tenant when a key holder reads
    the status), assembling the file unless the same ledger was assembled before."""
    ledger = read_ledger(engine, job_id)
    fingerprint = f"{fmt}:{ledger.fingerprint}"
    done = storage.read_result(job_id)
    if (
        done is not None
        and done.get("fingerprint") == fingerprint
        and storage.exists(job_id, done["file"])
    ):
        result: dict[str, Any] = done["result"]
        return result
    assembled = assemble(storage, job_id, fmt, ledger.parts)
    expires = int(now if now is not None else time.time()) + url_seconds
    result = {
        "recordCount": assembled.records,
        "download": {
            "file": assembled.name,
            "expires": expires,
        },
        "expiresAt": iso(datetime.fromtimestamp(expires, UTC)),
        "bytes": assembled.bytes,
        "sha256": assembled.sha256,
    }
    storage.write_result(
        job_id,
        {"fingerprint": fingerprint, "file": assembled.name, "expires": expires, "result": result},
    )
    if ledger.complete:
        for index, _ in ledger.parts:
            storage.remove(job_id, part_name(index))
    return result
