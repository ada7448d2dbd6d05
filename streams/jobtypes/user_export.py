"""`user-export`: the users a filter picks, as one gzip file (csv, json or ndjson) on a signed URL.

- Submission (`source`): the ids the filter picks among the tenant's users, streamed in id order
  with a server-side cursor, become the job's records (`{"id": ...}`, rows 1..N), so the total is
  exact. Only the tenant's users are read, then and in every chunk. Records have
  no routing key and go to the partitions a chunk at a time (`consecutive_chunks`): a chunk is a
  run of consecutive ids, and chunks spread over every partition and worker. Chunks hold at most
  1000 records, so progress moves at least every 1000 rows.
- A chunk (`apply_chunk`, in a writer process, in the chunk's transaction): its users still
  matching the filter (read as an id range when the ids are dense, else as an id list; only the
  chunk's ids are kept) are streamed (server-side cursor) into one gzip part,
  `<export dir>/<job>/part-<chunk>.gz`, written under a temporary name and renamed. Rows written
  are `successful`; ids deleted or no longer matching since the submission are `skipped`. A
  redelivered chunk finds its ledger row and writes nothing; one retried after a failure
  rewrites the same part. On PostgreSQL an advisory lock per chunk keeps two workers applying
  the same chunk at once (a rebalance) from replacing a part the ledger already vouches for.
- The end (`finish`, once every chunk is counted): streams/exports/assemble.py.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import Any, ClassVar

from sqlalchemy import ColumnElement, Connection, Engine, false, select, text

from streams import config
from streams.exceptions import TransientError
from streams.exports import export_storage
from streams.exports.assemble import finish_export
from streams.exports.formats import COLUMNS, FORMATS, PartWriter
from streams.exports.storage import part_name
from streams.jobtypes.base import JobType
from streams.jobtypes.user_filter import FilterOption, conditions
from streams.models import Chunk, ChunkResult, RecordFailure
from streams.options import ChoiceOption, IntOption, OptionSpec
from streams.sink import ledger
from streams.sink.tables import users

MAX_CHUNK_SIZE = 1000
SOURCE_BATCH = 5000  # ids fetched per round trip of the server-side cursor at submission
ROWS_BATCH = MAX_CHUNK_SIZE  # rows fetched per round trip while writing a part
RANGE_SPAN = 16  # ids spanning at most this many times their number are read as a range
SKIPPED_REASON = "deleted, or no longer matches the filter"
_EXPORTED = [users.c[name] for name in COLUMNS]


class UserExport(JobType):
    name: ClassVar[str] = "user-export"
    extra_options: ClassVar[Mapping[str, OptionSpec]] = {
        # progress at least every 1000 rows: a chunk's outcome is what moves it
        "chunkSize": IntOption(MAX_CHUNK_SIZE, 100, MAX_CHUNK_SIZE),
        "format": ChoiceOption("csv", FORMATS),
        "filter": FilterOption(),
    }
    known_columns: ClassVar[frozenset[str]] = frozenset({"id"})
    columns: ClassVar[tuple[str, ...]] = ("id",)
    generates_records: ClassVar[bool] = True
    consecutive_chunks: ClassVar[bool] = True
    has_result: ClassVar[bool] = True

    def routing_key(self, fields: Mapping[str, Any]) -> str | None:
        return None  # reads only: no two records need to be applied in order

    def source(
        self, engine: Engine, tenant: str, options: Mapping[str, Any]
    ) -> Iterator[Mapping[str, Any]]:
        statement = (
            select(users.c.id)
            .where(users.c.tenant == tenant, *conditions(options["filter"]))
            .order_by(users.c.id)
        )
        with engine.connect() as connection:
            ids = connection.execute(
                statement, execution_options={"stream_results": True, "yield_per": SOURCE_BATCH}
            ).scalars()
            for user_id in ids:
                yield {"id": str(user_id)}

    def apply_chunk(self, connection: Connection, chunk: Chunk) -> ChunkResult:
        result = ChunkResult(records=len(chunk.records))
        rows_of: dict[int, int] = {}  # user id → record number
        for record in chunk.records:
            user_id = _user_id(record["fields"])
            if user_id is None:
                reason = record["error"] or "not a user id"
                result.fail(RecordFailure(record["row"], "id", reason), record["fields"])
            elif user_id in rows_of:
                result.skip(record["row"], "duplicate id", user_id)
            else:
                rows_of[user_id] = record["row"]
        if connection.dialect.name == "postgresql":
            _lock_chunk(connection, chunk)
        options = chunk.options
        statement = (
            select(*_EXPORTED)
            .where(
                _ids_condition(rows_of),
                users.c.tenant == chunk.tenant,  # ids of another tenant's users: skipped
                *conditions(options.get("filter") or {}),
            )
            .order_by(users.c.id)
        )
        written: set[int] = set()
        storage = export_storage()
        with (
            storage.write(chunk.job_id, part_name(chunk.chunk_index)) as out,
            PartWriter(out, options.get("format", "csv")) as part,
        ):
            if rows_of:
                rows = connection.execute(
                    statement, execution_options={"stream_results": True, "yield_per": ROWS_BATCH}
                )
                for row in rows:
                    if row[0] in rows_of:  # a range also finds ids that are not the chunk's
                        part.write(row)
                        written.add(row[0])
        result.successful += len(written)
        for user_id, row_number in rows_of.items():
            if user_id not in written:
                result.skip(row_number, SKIPPED_REASON, user_id)
        result.check()
        return result

    def finish(self, engine: Engine, job_id: str, options: Mapping[str, Any]) -> dict[str, Any]:
        settings = config.settings()
        return finish_export(
            engine,
            export_storage(settings),
            job_id,
            options.get("format", "csv"),
            settings.export_url_seconds,
        )


def _user_id(fields: Mapping[str, Any] | None) -> int | None:
    value = None if fields is None else fields.get("id")
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _ids_condition(ids: Collection[int]) -> ColumnElement[bool]:
    """The chunk's ids as a key range when they are dense enough (a chunk of an export is a run
    of consecutive ids: a range scan costs half of 1000 index lookups), else as a list."""
    if not ids:
        return false()
    low, high = min(ids), max(ids)
    if high - low < RANGE_SPAN * len(ids):
        return users.c.id.between(low, high)
    return users.c.id.in_(list(ids))


def _lock_chunk(connection: Connection, chunk: Chunk) -> None:
    """Wait for a concurrent application of the same chunk to commit or roll back; if it
    committed, give up: the retry finds its ledger row, and its part stays as it wrote it."""
    connection.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
        {"key": f"sluice-export:{chunk.job_id}:{chunk.chunk_index}"},
    )
    if ledger.find(connection, chunk.job_id, chunk.chunk_index) is not None:
        raise TransientError("the chunk was applied concurrently; the retry reads its outcome")
