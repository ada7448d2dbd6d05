"""The data every layer shares: records as parsed, chunks, and what applying a chunk did.

Plain values, importing nothing of Sluice's: the parser, the splitter, the wire format, the
writer processes, the sink and the agents all speak in these.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

ERROR_SAMPLE_SIZE = 5
_json_text = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


class ParsedRecord(NamedTuple):
    """One record of an upload; `fields` is None exactly when `error` says why.

    A NamedTuple rather than a frozen dataclass: one is built per record, ~4x cheaper."""

    row: int
    fields: dict[str, Any] | None
    error: str | None = None


@dataclass(frozen=True)
class Chunk:
    """A decoded chunk record (schemas/chunk.v*.avsc)."""

    job_id: str
    job_type: str
    tenant: str
    chunk_index: int
    partition: int
    partition_seq: int
    options: Mapping[str, Any]
    records: Sequence[Mapping[str, Any]]  # {"row", "fields", "error"}
    attempt: int = 0
    #: The field names every record has, in order (CSV uploads); empty when they vary.
    columns: tuple[str, ...] = ()
    #: Values keep JSON types (NDJSON and inline JSON uploads) rather than being text.
    json_values: bool = False
    #: -1: a chunk the API split (progress by partition); >= 0: an intake chunk, whose progress
    #: counts by lane (chunk index // 64) and its `partition_seq` within it (chunk index % 64)
    lane: int = -1


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
    tenant: str = ""
    lane: int = -1

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
            chunk.tenant,
            chunk.lane,
        )


@dataclass(frozen=True, slots=True)
class RecordFailure:
    row: int
    field: str | None
    reason: str


class RecordOutcome(NamedTuple):
    """One record's outcome, kept in the results table (streams/sink/results.py)."""

    row: int
    outcome: str  # created | updated | skipped | failed
    entity_id: int | None = None
    field: str | None = None
    reason: str | None = None
    original: str | None = None  # JSON of a failed record's fields, to fix and resubmit


@dataclass
class ChunkResult:
    """What applying a chunk did; successful + failed + skipped == records, always."""

    records: int = 0
    successful: int = 0
    failed: int = 0
    skipped: int = 0
    created: int = 0
    updated: int = 0
    errors: list[RecordFailure] = field(default_factory=list)
    #: set when the chunk was skipped because its job was cancelled or stopped
    stopped: str | None = None
    #: every record's outcome; written with the chunk, then dropped (it does not travel)
    outcomes: list[RecordOutcome] = field(default_factory=list, repr=False)

    def fail(self, failure: RecordFailure, original: Mapping[str, Any] | None = None) -> None:
        self.failed += 1
        if len(self.errors) < ERROR_SAMPLE_SIZE:
            self.errors.append(failure)
        kept = None if original is None else _json_text(original)
        self.outcomes.append(
            RecordOutcome(failure.row, "failed", None, failure.field, failure.reason, kept)
        )

    def succeed(self, row: int, created: bool, entity_id: int | None) -> None:
        self.successful += 1
        if created:
            self.created += 1
        else:
            self.updated += 1
        self.outcomes.append(RecordOutcome(row, "created" if created else "updated", entity_id))

    def skip(self, row: int, reason: str, entity_id: int | None = None) -> None:
        self.skipped += 1
        self.outcomes.append(RecordOutcome(row, "skipped", entity_id, None, reason))

    def check(self) -> None:
        if self.successful + self.failed + self.skipped != self.records:
            raise AssertionError(f"chunk counts do not add up: {self}")
