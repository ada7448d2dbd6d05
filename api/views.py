"""The shapes of the API's answers: every JSON body is built here, from what streams/ hands
over (progress states, registry rows, result rows, dead letters, replay reports)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from api import paths
from api.summaries import summary
from streams import kept
from streams.clock import from_ms, iso, iso_ms
from streams.config import Settings
from streams.exports import signing
from streams.job_outcome import records_outcome
from streams.progress import FINISHED, State, new_state, status_of, waiting_on
from streams.retention import expires_at
from streams.sink.jobs import CANCELLED, CANCELLING, JobRecord
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
    *,
    total_chunks: int | None = None,
) -> dict:
    """The answer of GET /api/batch/jobs/{id}, from the job's progress state; `link` signs the
    URL of a file to download; `total` and `total_chunks` are the registry's, for a state that
    has not heard its split's end yet (the 202 said them already)."""
    s = state or new_state(job_id)
    status = status_of(state)
    total_records = s["totalRecords"] if s["totalRecords"] is not None else total
    processed = s["records"]
    if total_records:
        # records a cancel or a stop skipped were not worked on: a cancelled job shows how far
        # it got, not 100 %
        done = processed - s.get("stopSkipped", 0)
        percentage = round(100.0 * done / total_records, 2)
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
            "totalChunks": s["totalChunks"] if s["totalChunks"] is not None else total_chunks,
        },
        "createdAt": iso_ms(s["acceptedAt"]),
        "startedAt": iso_ms(s["startedAt"]),
        "completedAt": iso_ms(s["completedAt"]),
        "error": s["error"] or _stop_message(status, s) or _result_error(status, s),
        "waitingOn": waiting_on(s) if status not in FINISHED else None,
        "hasErrors": s["failed"] > 0,
        "outcome": records_outcome(s) if status in FINISHED else None,
        "summary": summary(s, job_type),
    }
    if s.get("awaitsResult"):
        done = status == "completed"
        view["result"] = job_result(s["result"], link) if done else None
    return view


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
    registry row and progress state (the state the registry keeps, once the table lost a
    finished job: streams/kept.py); from the state alone while the database is away."""
    tenant = job.tenant if job is not None else (state or {}).get("tenant") or ""
    link = download_link(settings, tenant, job_id)
    state, from_registry = kept.answering(job, state)
    if job is None:
        view = status_view(job_id, (state or {}).get("type") or "", state, None, link)
    else:
        view = status_view(
            job_id, job.type, state, job.total_records, link, total_chunks=job.total_chunks
        )
        view["createdAt"] = iso(job.created_at)  # as the listing says it
        if from_registry and job.status:
            view["status"] = job.status  # what the registry recorded when the job ended
        if job.error and view["status"] != "failed":
            view["status"], view["error"] = "failed", job.error
        view["status"] = shown_status(view["status"], job.stopped)
        view["summary"]["deadLettersLost"] = job.dead_letters_lost or 0
    completed = from_ms((state or {}).get("completedAt"))
    view["expiresAt"] = iso(expires_at(settings, view["status"], completed))
    view["resultsUrl"] = paths.results_url(job_id)
    view["batchId"] = job.batch_id if job is not None else None
    return view


def shown_status(status: str, stopped: str | None) -> str:
    """`cancelling` from an accepted cancel until the job has ended (`cancelled`, or another end
    it reached first); the status of the job's progress otherwise."""
    if stopped == CANCELLED and status not in FINISHED:
        return CANCELLING
    return status


def cancelling_view(job_id: str) -> dict[str, Any]:
    return {"jobId": job_id, "status": CANCELLING, "statusUrl": paths.job_url(job_id)}


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
        "status": shown_status(job.status or "queued", job.stopped),
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
