"""`user-import`: validate user records and upsert them into the tenant's `users` by lowercased
email (a user's identity is (tenant, email): another tenant's users are never read or touched).

Duplicate handling (same identity earlier in the job, or already in the table):
- skipDuplicates: the first is kept, later ones are `skipped`;
- updateDuplicates: all are applied in submission order, the last wins; later ones are `updated`;
- neither: later ones are `failed` with reason "duplicate".
Per-key order across chunks comes from routing every record to a partition by its identity, so
all records of one email are applied by one partition's consumer, in order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from sqlalchemy import Connection

from streams.exceptions import OptionError
from streams.jobtypes.base import JobType
from streams.jobtypes.user_rules import COLUMNS, REQUIRED_COLUMNS, User, identity, validate_user
from streams.models import Chunk, ChunkResult, RecordFailure
from streams.options import BoolOption, OptionSpec
from streams.sink import users as users_sink


class UserImport(JobType):
    name: ClassVar[str] = "user-import"
    extra_options: ClassVar[Mapping[str, OptionSpec]] = {
        "skipDuplicates": BoolOption(False),
        "updateDuplicates": BoolOption(False),
    }
    required_columns: ClassVar[frozenset[str]] = REQUIRED_COLUMNS
    known_columns: ClassVar[frozenset[str]] = frozenset(COLUMNS)
    columns: ClassVar[tuple[str, ...]] = COLUMNS

    def check_options(self, options: Mapping[str, Any]) -> None:
        if options["skipDuplicates"] and options["updateDuplicates"]:
            raise OptionError(
                "updateDuplicates", "cannot be combined with skipDuplicates: choose one"
            )

    def routing_key(self, fields: Mapping[str, Any]) -> str | None:
        return identity(fields)

    def apply_chunk(self, connection: Connection, chunk: Chunk) -> ChunkResult:
        result = ChunkResult(records=len(chunk.records))
        valid: list[tuple[int, User]] = []
        originals: dict[int, Mapping[str, Any]] = {}  # kept for a duplicate that fails
        check_formats = bool(chunk.options.get("validate", True))
        for record in chunk.records:
            row = record["row"]
            if record["fields"] is None:
                result.fail(RecordFailure(row, None, record["error"] or "unreadable record"))
                continue
            outcome = validate_user(record["fields"], check_formats=check_formats)
            if isinstance(outcome, User):
                valid.append((row, outcome))
                originals[row] = record["fields"]
            else:
                failure = RecordFailure(row, outcome.field, outcome.reason)
                result.fail(failure, record["fields"])

        if chunk.options.get("updateDuplicates"):
            self._apply_updating(connection, chunk, valid, result)
        else:
            skip = bool(chunk.options.get("skipDuplicates"))
            self._apply_first_wins(connection, chunk, valid, originals, result, skip=skip)
        result.check()
        return result

    @staticmethod
    def _apply_first_wins(
        connection: Connection,
        chunk: Chunk,
        valid: list[tuple[int, User]],
        originals: Mapping[int, Mapping[str, Any]],
        result: ChunkResult,
        *,
        skip: bool,
    ) -> None:
        first: dict[str, User] = {}
        for _, user in valid:
            first.setdefault(user.email, user)
        created = users_sink.insert_new(
            connection, chunk.tenant, list(first.values()), chunk.job_id
        )
        # the tenant's rows that were there before, for their ids (usually none)
        known = users_sink.ids_of(connection, chunk.tenant, [e for e in first if e not in created])
        for row, user in valid:
            if user.email in created and first[user.email] is user:
                result.succeed(row, True, created[user.email])
            elif skip:
                result.skip(row, "duplicate", known.get(user.email, created.get(user.email)))
            else:
                result.fail(RecordFailure(row, "email", "duplicate"), originals[row])

    @staticmethod
    def _apply_updating(
        connection: Connection, chunk: Chunk, valid: list[tuple[int, User]], result: ChunkResult
    ) -> None:
        last: dict[str, User] = {}
        for _, user in valid:
            last[user.email] = user  # submission order: the last one wins
        ids, inserted = users_sink.upsert(
            connection, chunk.tenant, list(last.values()), chunk.job_id
        )
        seen: set[str] = set()
        for row, user in valid:
            result.succeed(row, user.email in inserted and user.email not in seen, ids[user.email])
            seen.add(user.email)
