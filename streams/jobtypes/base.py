"""What a job type is: its options, its routing key, and how it applies one chunk.

A job type is one module under `streams/jobtypes/` plus one line in the registry
(`streams/jobtypes/__init__.py`); the splitter, agents and API only talk to this interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlalchemy import Connection

from streams.options import COMMON_OPTIONS, OptionSpec, parse_options

ERROR_SAMPLE_SIZE = 5


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

    def fail(self, failure: RecordFailure) -> None:
        self.failed += 1
        if len(self.errors) < ERROR_SAMPLE_SIZE:
            self.errors.append(failure)

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
