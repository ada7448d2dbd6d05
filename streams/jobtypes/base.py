"""What a job type is: its options, its routing key, and how it applies one chunk.

A job type is one module under `streams/jobtypes/` plus one line in the registry
(`streams/jobtypes/__init__.py`); the splitter, agents and API only talk to this interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from sqlalchemy import Connection, Engine

from streams.models import Chunk, ChunkResult
from streams.options import COMMON_OPTIONS, OptionSpec, parse_options


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

    def source(
        self, engine: Engine, tenant: str, options: Mapping[str, Any]
    ) -> Iterator[Mapping[str, Any]]:
        """The job's records, streamed, for a type that `generates_records`: the type's
        `columns`, as text (chunks then encode them as compactly as a CSV upload's), read from
        `tenant`'s data only."""
        raise NotImplementedError(f"{self.name} takes its records from an upload")

    def finish(self, engine: Engine, job_id: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """The job's `result` (JSON), for a type that `has_result`, once every chunk is counted.
        Runs in a thread of the worker owning the job's progress and may run again for the same
        job (a crash, a rebalance, a replayed chunk): it must be idempotent. Raising fails this
        attempt; it is retried, then the job fails with the message."""
        raise NotImplementedError(f"{self.name} has no result")
