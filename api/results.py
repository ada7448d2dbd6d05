"""HTTP routes for what a job left behind: per-record results, failed records as a file, errors
grouped, and the job listing. All of it is in the database: any worker answers."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from api.auth import principal_of, tenant_seen
from api.database import database
from api.queries import page_limit
from api.views import error_group, job_cursor, job_item, parse_job_cursor, result_item
from streams.exceptions import RequestError
from streams.exports.formats import neutralize
from streams.jobtypes import JOB_TYPES
from streams.runtime import Runtime
from streams.sink import job_listing, results
from streams.sink import jobs as job_registry

_ROW = re.compile(r"[0-9]{1,18}")  # a record number: a BIGINT
STATUSES = ("queued", "active", "cancelling", "completed", "failed", "cancelled")
MAX_BATCH_ID = 200  # characters of a producer's `sluice-batch` header
_ID_PREFIX = re.compile(r"[0-9a-f-]{1,36}")  # the start of a job id (a UUID, lower case)
ERROR_COLUMNS = ("error_row", "error_field", "error_reason")


def _choice(value: str | None, field: str, allowed: tuple[str, ...]) -> str | None:
    if value in (None, ""):
        return None
    if value not in allowed:
        raise RequestError(f"{field} must be one of {', '.join(allowed)}", field=field)
    return value


def _batch_id(value: str | None) -> str | None:
    """`batchId`: a producer's batch id, 1 to MAX_BATCH_ID characters of any kind."""
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_BATCH_ID:
        raise RequestError(f"batchId must be 1 to {MAX_BATCH_ID} characters long", field="batchId")
    return value


def _id_prefix(value: str | None) -> str | None:
    """`idPrefix`: the start of a job id, as the CLI takes short ids (git-like)."""
    if value is None:
        return None
    if not _ID_PREFIX.fullmatch(value):
        raise RequestError(
            "idPrefix must be 1 to 36 lower-case hexadecimal digits or dashes", field="idPrefix"
        )
    return value


def columns_of(job_type: str) -> list[str]:
    """The columns of a failed-records file, CSV or NDJSON alike: the job type's, in its order
    (others were ignored, and listed in the job's summary.unknownColumns)."""
    return list(JOB_TYPES[job_type].columns) if job_type in JOB_TYPES else []


@dataclass(frozen=True)
class ResultsApi:
    runtime: Runtime

    async def _job(self, request: web.Request) -> job_registry.JobRecord:
        job_id = request.match_info["job_id"]
        job = None
        if job_registry.valid_job_id(job_id):
            job = await database(job_registry.get_job, self.runtime.engine, job_id)
        # another tenant's job is one that does not exist
        if job is None or not principal_of(request).sees(job.tenant):
            raise RequestError(f"no job {job_id[:40]!r}", status=404)
        return job

    async def list_jobs(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        after = None
        if query.get("cursor"):
            after = parse_job_cursor(query["cursor"])
            if after is None:
                raise RequestError("cursor is not one this API gave", field="cursor")
        job_type = query.get("type") or None
        if job_type is not None and job_type not in JOB_TYPES:
            raise RequestError(f"unknown job type {job_type!r}", field="type")
        tenant = tenant_seen(request, query.get("tenant"))
        batch_id = _batch_id(query.get("batchId"))
        id_prefix = _id_prefix(query.get("idPrefix"))
        page = await database(
            lambda: job_listing.list_jobs(
                self.runtime.engine,
                tenant,
                status=_choice(query.get("status"), "status", STATUSES),
                job_type=job_type,
                limit=page_limit(query.get("limit")),
                after=after,
                batch_id=batch_id,
                id_prefix=id_prefix,
            )
        )
        next_cursor = job_cursor(page.jobs[-1]) if page.more else None
        return web.json_response(
            {"items": [job_item(job) for job in page.jobs], "nextCursor": next_cursor}
        )

    async def results(self, request: web.Request) -> web.StreamResponse:
        job = await self._job(request)
        query = request.query
        status = _choice(query.get("status"), "status", tuple(results.STATUS_OUTCOMES))
        after = 0
        if query.get("cursor"):
            if not _ROW.fullmatch(query["cursor"]):
                raise RequestError("cursor is not one this API gave", field="cursor")
            after = int(query["cursor"])
        page = await database(
            results.page, self.runtime.engine, job.id, status, after, page_limit(query.get("limit"))
        )
        next_cursor = None if page.next_after is None else str(page.next_after)
        items = [result_item(row) for row in page.rows]
        return web.json_response({"items": items, "nextCursor": next_cursor})

    async def errors(self, request: web.Request) -> web.StreamResponse:
        job = await self._job(request)
        groups = await database(results.error_groups, self.runtime.engine, job.id)
        return web.json_response({"jobId": job.id, "groups": [error_group(g) for g in groups]})

    async def failed_csv(self, request: web.Request) -> web.StreamResponse:
        return await self._failed_file(request, "csv")

    async def failed_ndjson(self, request: web.Request) -> web.StreamResponse:
        return await self._failed_file(request, "ndjson")

    async def _failed_file(self, request: web.Request, kind: str) -> web.StreamResponse:
        """The failed records with their original fields and why they failed, streamed, ready
        to fix and submit again."""
        job = await self._job(request)
        if (request.query.get("status") or "failed") != "failed":
            raise RequestError(
                "only failed records keep their original fields: use status=failed",
                field="status",
            )
        columns = columns_of(job.type)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/csv; charset=utf-8"
                if kind == "csv"
                else "application/x-ndjson",
                "Content-Disposition": f'attachment; filename="{job.id}-failed.{kind}"',
            }
        )
        await response.prepare(request)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        if kind == "csv":
            writer.writerow([*columns, *ERROR_COLUMNS])
        batches = results.failed_batches(self.runtime.engine, job.id)
        # not retried: a generator that raised is spent (the answer breaks off instead)
        while (batch := await asyncio.to_thread(next, batches, None)) is not None:
            for row in batch:
                original = json.loads(row.original) if row.original else {}
                if kind == "csv":
                    cells = [_cell(original.get(c)) for c in columns]
                    writer.writerow([*cells, row.row_no, row.field or "", row.reason or ""])
                else:
                    line = {
                        **{column: original[column] for column in columns if column in original},
                        "error_row": row.row_no,
                        "error_field": row.field,
                        "error_reason": row.reason,
                    }
                    buffer.write(json.dumps(line, ensure_ascii=False) + "\n")
            await response.write(buffer.getvalue().encode())
            buffer.seek(0)
            buffer.truncate()
        await response.write(buffer.getvalue().encode())
        await response.write_eof()
        return response


def _cell(value: Any) -> str:
    """A cell of the failed-records file; text a spreadsheet would run as a formula is
    neutralised, as in exports."""
    if value is None:
        return ""
    return neutralize(value if isinstance(value, str) else json.dumps(value))
