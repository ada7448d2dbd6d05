"""The JSON bodies of the dead-letter routes: a dead letter listed, shown, and a replay's report."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from streams.clock import iso_ms
from streams.deadletter.reader import DeadLetter
from streams.deadletter.replay import ReplayReport
from streams.exceptions import PoisonMessage


def dead_letter_view(
    letter: DeadLetter, now_ms: int, replayed_at: datetime | None = None
) -> dict[str, Any]:
    source = letter.source
    return {
        "id": letter.id,
        "jobId": letter.job_id,
        "chunkIndex": letter.int_header("chunk-index"),
        "errorClass": letter.error_class,
        "errorMessage": letter.header("error-message"),
        "attempts": letter.int_header("attempts"),
        "firstFailureAt": iso_ms(letter.int_header("first-failure-at")),
        "lastFailureAt": iso_ms(letter.failed_at_ms),
        "ageSeconds": max(0, (now_ms - letter.failed_at_ms) // 1000),
        "source": None
        if source is None
        else {"topic": source.topic, "partition": source.partition, "offset": source.offset},
        "schemaId": letter.int_header("schema-id"),
        "replayOf": letter.header("replay-of"),
        "replayedAt": None if replayed_at is None else replayed_at.isoformat(),
    }


def dead_letter_details(letter: DeadLetter) -> dict[str, Any]:
    """What `dlq show` adds to the list view: every header and what the bytes hold."""
    detail: dict[str, Any] = {
        "headers": dict(letter.headers),
        "keyBytes": None if letter.key is None else len(letter.key),
        "valueBytes": None if letter.value is None else len(letter.value),
    }
    try:
        chunk = letter.chunk()
    except PoisonMessage as exc:
        detail["decodeError"] = str(exc)
        return detail
    rows = [record["row"] for record in chunk.records]
    detail["chunk"] = {
        "jobId": chunk.job_id,
        "jobType": chunk.job_type,
        "chunkIndex": chunk.chunk_index,
        "partition": chunk.partition,
        "partitionSeq": chunk.partition_seq,
        "lane": chunk.lane,
        "records": len(rows),
        "firstRow": min(rows, default=None),
        "lastRow": max(rows, default=None),
    }
    return detail


def replay_view(report: ReplayReport) -> dict[str, Any]:
    return {
        "dryRun": report.dry_run,
        "matched": report.matched,
        # a dry run replays nothing: what it would replay is a count of its own
        "replayed": 0 if report.dry_run else report.replayed,
        "wouldReplay": report.replayed if report.dry_run else None,
        "alreadyReplayed": report.already_replayed,
        "jobs": dict(report.jobs),
        "deadLetters": report.ids,
        "truncated": report.replayed > len(report.ids),
    }


# -- API keys ------------------------------------------------------------------------------------
