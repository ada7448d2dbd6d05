"""The shapes of the API's answers: every JSON body is built here, from what streams/ hands
over (progress states, registry rows, result rows, dead letters, replay reports)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from api import paths
from streams.clock import from_ms, iso, iso_ms
from streams.config import Settings
from streams.deadletter.reader import DeadLetter
from streams.deadletter.replay import ReplayReport
from streams.exceptions import PoisonMessage
from streams.exports import signing
from streams.job_outcome import records_outcome
from streams.progress import FINISHED, State, new_state, status_of, waiting_on
from streams.retention import expires_at
from streams.sink.jobs import JobRecord
from streams.sink.keys import KeyRecord
from streams.sink.results import ErrorGroup
from streams.submit import Accepted

Link = Callable[[str, int], str]  # (file, expires) -> a signed download URL

# -- a job ----------------------------------------------------------------------------------------


def accepted_view(accepted: Accepted) -> dict[str, Any]:
    """The answer to a submission (202)."""
    return {
        "jobId": accepted.job_id,
        "status": "queued",
        "estimatedTime": accepted.estimated_seconds,
        "totalRecords": accepted.total_records,
        "totalChunks": accepted.total_chunks,
        "statusUrl": paths.job_url(accepted.job_id),
        "resultsUrl": paths.results_url(accepted.job_id),
    }


def status_view(
    job_id: str,
    job_type: str,
    state: State | None,
    total: int | None,
    link: Link | None = None,
) -> dict:
    """The answer of GET /api/batch/jobs/{id}, from the job's progress state; `link` signs the
    URL of a file to download."""
    s = state or new_state(job_id)
    status = status_of(state)
    total_records = s["totalRecords"] if s["totalRecords"] is not None else total
    processed = s["records"]
    if total_records:
        percentage = round(100.0 * processed / total_records, 2)
    else:
        percentage = 100.0 if status == "completed" else 0.0
    view = {
        "jobId": job_id,
        "type": s["type"] or job_type,
        "status": status,
        "progress": {
            "percentage": percentage,
            "processed": processed,
            "total": total_records,
            "successful": s["successful"],
            "failed": s["failed"],
            "skipped": s["skipped"],
            "currentChunk": s["chunksDone"],
            "totalChunks": s["totalChunks"],
        },
        "startedAt": iso_ms(s["startedAt"]),
        "completedAt": iso_ms(s["completedAt"]),
        "error": s["error"] or _stop_message(status, s) or _result_error(status, s),
        "waitingOn": waiting_on(s) if status not in FINISHED else None,
        "hasErrors": s["failed"] > 0,
        "outcome": records_outcome(s) if status in FINISHED else None,
        "summary": _summary(s),
    }
    if s.get("awaitsResult"):
        done = status == "completed"
        view["result"] = job_result(s["result"], link) if done else None
    return view


def _summary(s: State) -> dict[str, Any]:
    return {
        "created": s["created"],
        "updated": s["updated"],
        "deadLettered": s["deadLettered"],
        "deadLetteredChunks": len(s.get("deadLetters", {})),
        "lastReplayAt": iso_ms(s.get("lastReplayAt")),
        "unknownColumns": s["unknownColumns"],
        "errorsTotal": s["failed"],
        "errors": sorted(s["errors"], key=lambda e: e["row"]),
    }


def _stop_message(status: str, state: State) -> str | None:
    if status == "failed" and state["options"].get("stopOnError"):
        return "stopped at the first failed record (stopOnError); the rest was skipped"
    if status == "cancelled":
        return "cancelled; records not applied before the cancellation were skipped"
    return None


def _result_error(status: str, state: State) -> str | None:
    if status == "failed" and state.get("resultError"):
        return f"no result: {state['resultError']}"
    return None


def job_view(
    job_id: str, job: JobRecord | None, state: State | None, settings: Settings
) -> dict[str, Any]:
    """A job's status as GET /api/batch/jobs/{id} answers it (on the job's owner), from its
    registry row and progress state; from the state alone while the database is away."""
    tenant = job.tenant if job is not None else (state or {}).get("tenant") or ""
    link = download_link(settings, tenant, job_id)
    if job is None:
        view = status_view(job_id, (state or {}).get("type") or "", state, None, link)
    else:
        view = status_view(job_id, job.type, state, job.total_records, link)
        if job.error and view["status"] != "failed":
            view["status"], view["error"] = "failed", job.error
    completed = from_ms((state or {}).get("completedAt"))
    view["expiresAt"] = iso(expires_at(settings, view["status"], completed))
    view["resultsUrl"] = paths.results_url(job_id)
    view["batchId"] = job.batch_id if job is not None else None
    return view


def cancelling_view(job_id: str) -> dict[str, Any]:
    return {"jobId": job_id, "status": "cancelling", "statusUrl": paths.job_url(job_id)}


def download_link(settings: Settings, tenant: str, job_id: str) -> Link:
    """Signs a download of one of the job's files for its tenant (streams/exports/signing.py)."""
    key = signing.signing_key(settings)

    def link(file: str, expires: int) -> str:
        signed = signing.signature(key, tenant, job_id, file, expires)
        return paths.download_url(job_id, file, expires, signed)

    return link


def job_result(result: dict[str, Any] | None, link: Link | None) -> dict[str, Any] | None:
    """A job's result as a client sees it: a file to `download` becomes its signed URL."""
    if result is None or "download" not in result:
        return result
    shown = {name: value for name, value in result.items() if name != "download"}
    if link is not None:
        shown["downloadUrl"] = link(result["download"]["file"], result["download"]["expires"])
    return shown


# -- job listing ---------------------------------------------------------------------------------


def job_item(job: JobRecord) -> dict[str, Any]:
    return {
        "jobId": job.id,
        "type": job.type,
        "status": job.status or "queued",
        "createdAt": iso(job.created_at),
        "completedAt": iso(job.completed_at),
        "expiresAt": iso(job.expires_at),
        "totalRecords": job.total_records,
        "batchId": job.batch_id,
        "origin": job.origin,
        "statusUrl": paths.job_url(job.id),
    }


def job_cursor(job: JobRecord) -> str:
    """Where the next page of a listing starts: after this job."""
    return f"{iso(job.created_at)}|{job.id}"


def parse_job_cursor(text: str) -> tuple[datetime, str] | None:
    moment, sep, job_id = text.partition("|")
    if not sep or not job_id:
        return None
    try:
        created = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        return None
    return created, job_id


# -- per-record results ----------------------------------------------------------------------------


def result_item(row: Any) -> dict[str, Any]:
    outcome = row.outcome
    status = "successful" if outcome in ("created", "updated") else outcome
    return {
        "row": row.row_no,
        "status": status,
        "action": outcome if status == "successful" else None,
        "entityId": row.entity_id,
        "field": row.field,
        "reason": row.reason,
    }


def error_group(group: ErrorGroup) -> dict[str, Any]:
    return dict(zip(("field", "reason", "count", "sampleRows"), group, strict=True))


# -- dead letters ----------------------------------------------------------------------------------


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
        "replayed": report.replayed,
        "alreadyReplayed": report.already_replayed,
        "jobs": dict(report.jobs),
        "deadLetters": report.ids,
        "truncated": report.replayed > len(report.ids),
    }


# -- API keys ------------------------------------------------------------------------------------


def key_view(record: KeyRecord) -> dict[str, Any]:
    """A key as listings show it: its prefix, never its value or hash."""
    return {
        "prefix": record.prefix,
        "tenant": record.tenant,
        "scopes": list(record.scopes),
        "name": record.name,
        "createdAt": iso(record.created_at),
        "revokedAt": iso(record.revoked_at),
    }
