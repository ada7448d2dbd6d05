"""The API's answers as people read them: a job's status, the job listing, error groups, dead
letters, a replay (the JSON shapes are api/views.py's). Fields the API adds later show up in a
job's summary line without a change here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from api.cli.ids import short
from api.cli.output import Pairs, age, text

JOB_COLUMNS = ("JOB", "TYPE", "STATUS", "RECORDS", "CREATED", "COMPLETED", "BATCH")
ERROR_COLUMNS = ("COUNT", "FIELD", "REASON", "SAMPLE ROWS")
DLQ_COLUMNS = ("ID", "JOB", "CHUNK", "ERROR", "ATTEMPTS", "AGE", "REPLAYED")
RESULT_HEADER = f"{'ROW':>9}  {'STATUS':<10}  {'ACTION':<7}  {'ENTITY':>9}  {'FIELD':<12}  REASON"
_TIMES = (
    ("startedAt", "started"),
    ("completedAt", "ended"),
    ("expiresAt", "kept until"),
    ("batchId", "batch"),
    ("waitingOn", "waiting on"),
    ("error", "error"),
)


def progress_text(progress: dict[str, Any]) -> str:
    total = progress.get("total")
    done = f"{text(progress.get('processed'))} of {text(total)} records"
    counts = ", ".join(
        f"{text(progress.get(name))} {name}" for name in ("successful", "failed", "skipped")
    )
    chunks = f"chunk {text(progress.get('currentChunk'))} of {text(progress.get('totalChunks'))}"
    return f"{text(progress.get('percentage'))}% - {done} ({counts}); {chunks}"


def job_fields(view: dict[str, Any]) -> Pairs:
    """A job's status (GET /api/batch/jobs/{id}), a field a line."""
    yield "job", text(view.get("jobId"))
    yield "type", text(view.get("type"))
    yield "status", text(view.get("status"))
    if isinstance(view.get("progress"), dict):
        yield "progress", progress_text(view["progress"])
    for key, label in _TIMES:
        if view.get(key) is not None:
            yield label, text(view[key])
    summary = view.get("summary") or {}
    shown = {k: v for k, v in summary.items() if k != "errors" and v not in (None, 0, [], {}, "")}
    if shown:
        yield "summary", text(shown)
    for error in summary.get("errors") or []:
        yield "failed record", record_error(error)
    result = view.get("result")
    if isinstance(result, dict):
        count, size = text(result.get("recordCount")), text(result.get("bytes"))
        yield "file", f"{count} records, {size} bytes"
        yield "download", text(result.get("downloadUrl"))


def record_error(error: dict[str, Any]) -> str:
    where = f"row {text(error.get('row'))}"
    if error.get("field"):
        where += f" {error['field']}"
    return f"{where}: {text(error.get('reason'))}"


def accepted_fields(answer: dict[str, Any]) -> Pairs:
    """The 202 of a submission."""
    yield "job", text(answer.get("jobId"))
    yield "status", text(answer.get("status"))
    records, chunks = text(answer.get("totalRecords")), text(answer.get("totalChunks"))
    yield "records", f"{records} in {chunks} chunks"
    yield "estimated", f"{text(answer.get('estimatedTime'))} s"


def job_rows(items: list[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
    for item in items:
        yield (
            short(item.get("jobId")),
            item.get("type"),
            item.get("status"),
            item.get("totalRecords"),
            item.get("createdAt"),
            item.get("completedAt"),
            item.get("batchId"),
        )


def error_rows(groups: list[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
    for group in groups:
        yield group["count"], group["field"], group["reason"], group["sampleRows"]


def dead_letter_rows(items: list[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
    for item in items:
        yield (
            item["id"],
            item["jobId"],
            item["chunkIndex"],
            item["errorClass"],
            item["attempts"],
            age(item["ageSeconds"]),
            "yes" if item["replayedAt"] else "",
        )


def dead_letter_fields(letter: dict[str, Any]) -> Pairs:
    """One dead letter (GET /api/batch/dlq/{id}): its fields, then every header."""
    for key, value in letter.items():
        if key != "headers":
            yield key, text(value)
    for name, value in (letter.get("headers") or {}).items():
        yield f"header {name}", text(value)


def replay_text(report: dict[str, Any]) -> str:
    jobs = len(report.get("jobs") or {})
    already = report.get("alreadyReplayed") or 0
    if report.get("dryRun"):
        head = f"would replay {report.get('wouldReplay') or 0:,} dead letters"
    else:
        head = f"replayed {report.get('replayed') or 0:,} dead letters"
    return (
        f"{head} of {jobs:,} job{'s' if jobs != 1 else ''} "
        f"({report.get('matched') or 0:,} matched, {already:,} replayed before)"
    )


def result_line(item: dict[str, Any]) -> str:
    """A record's outcome, in columns as wide as RESULT_HEADER's (results are streamed, so no
    table can measure them first)."""
    row, entity = (str(item[k]) if item.get(k) is not None else "-" for k in ("row", "entityId"))
    status, action, field = (text(item.get(k)) for k in ("status", "action", "field"))
    reason = text(item.get("reason"))
    return f"{row:>9}  {status:<10}  {action:<7}  {entity:>9}  {field:<12}  {reason}"
