"""What a job type is: its options, its routing key, and how it applies one chunk.

A job type is one module under `streams/jobtypes/` plus one line in the registry
(`streams/jobtypes/__init__.py`); the splitter, agents and API only talk to this interface.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

from sqlalchemy import Connection, Engine

from streams.options import COMMON_OPTIONS, OptionSpec, parse_options

ERROR_SAMPLE_SIZE = 5
_json_text = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


@dataclass(frozen=True, slots=True)
class RecordFailure:
    row: int
    field: str | None
    reason: str


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


class JobType(ABC):
    """One kind of batch job."""

    name: ClassVar[str]
    #: Options of this type on top of the common ones.
    extra_options: ClassVar[Mapping[str, OptionSpec]] = {}
    #: Columns an upload must have (checked before a job is created).
    required_columns: ClassVar[frozenset[str]] = frozenset()
    #: Columns the type reads; others are ignored and listed in the job summary.
    known_columns: ClassVar[frozenset[str]] = frozenset()
    #: The same, in the order files of failed records list them.
    columns: ClassVar[tuple[str, ...]] = ()
    #: Records come from `source` at submission instead of an upload (an export's rows).
    generates_records: ClassVar[bool] = False
    #: Records without a routing key go to the partitions a whole chunk at a time instead of
    #: one by one, so a chunk holds consecutive records (an export assembles them in order).
    consecutive_chunks: ClassVar[bool] = False
    #: The job ends with a `result` that `finish` makes once every chunk is counted.
    has_result: ClassVar[bool] = False

    def parse_options(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """All options with defaults applied; raises OptionError naming the field."""
        options = parse_options(raw, {**COMMON_OPTIONS, **self.extra_options})
        self.check_options(options)
        return options

    def check_options(self, options: Mapping[str, Any]) -> None:  # noqa: B027
        """Rules between options; raise OptionError. Default: none."""

    @abstractmethod
    def routing_key(self, fields: Mapping[str, Any]) -> str | None:
        """The key whose records must be applied in submission order (None: any partition)."""

    @abstractmethod
    def apply_chunk(self, connection: Connection, chunk: Chunk) -> ChunkResult:
        """Validate and write one chunk inside the caller's transaction, set-based."""

    def source(self, engine: Engine, options: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
        """The job's records, streamed, for a type that `generates_records`: the type's
        `columns`, as text (chunks then encode them as compactly as a CSV upload's)."""
        raise NotImplementedError(f"{self.name} takes its records from an upload")

    def finish(self, engine: Engine, job_id: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """The job's `result` (JSON), for a type that `has_result`, once every chunk is counted.
        Runs in a thread of the worker owning the job's progress and may run again for the same
        job (a crash, a rebalance, a replayed chunk): it must be idempotent. Raising fails this
        attempt; it is retried, then the job fails with the message."""
        raise NotImplementedError(f"{self.name} has no result")
