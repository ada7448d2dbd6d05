"""The thin HTTP API, served by every worker: routes → streams functions.

Job status lives in the job-progress table, partitioned like the progress topic; a worker that
does not own a job's partition forwards the lookup to the worker that does (Faust's partition
assignor knows every worker's URL).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api import uploads
from api.deadletters import DeadLetterApi
from api.errors import error_response
from api.exports import ExportApi
from api.results import ResultsApi
from streams import retention, topics
from streams.app import Sluice
from streams.exceptions import BrokerUnavailable, RequestError
from streams.ledger_apply import CANCELLED
from streams.metrics import metrics
from streams.progress import FINISHED, status_view
from streams.sink import jobs as job_registry

log = logging.getLogger(__name__)

API_PREFIX = "/api/batch"
OPENAPI_PATH = Path(__file__).with_name("openapi.yaml")
ROUTED_HEADER = "X-Sluice-Routed"
CSV_TYPES = {"text/csv", "application/x-ndjson", "application/ndjson"}


class BatchApi:
    def __init__(self, sluice: Sluice):
        self.sluice = sluice
        self._session: aiohttp.ClientSession | None = None
        self.dead_letters = DeadLetterApi(sluice, API_PREFIX)
        self.results = ResultsApi(sluice, API_PREFIX)

    def routes(self) -> list[web.RouteDef]:
        return [
            *self.dead_letters.routes(),
            *self.results.routes(),
            *ExportApi(self.sluice, API_PREFIX).routes(),
            web.delete(f"{API_PREFIX}/jobs/{{job_id}}", self.delete_job),
            web.post(f"{API_PREFIX}/jobs", self.submit_job),
            web.get(f"{API_PREFIX}/jobs/{{job_id}}", self.get_job),
            web.post(f"{API_PREFIX}/jobs/{{job_id}}/cancel", self.cancel_job),
            web.get("/api/health", self.health),
            web.get("/api/openapi.yaml", self.openapi),
            web.get("/metrics", self.prometheus),
        ]

    # -- submission ---------------------------------------------------------------------------

    async def submit_job(self, request: web.Request) -> web.StreamResponse:
        content_type = request.content_type
        try:
            if content_type == "application/json":
                accepted = await uploads.submit_inline(self.sluice, request)
            elif content_type == "multipart/form-data":
                accepted = await uploads.submit_multipart(self.sluice, request)
            elif content_type in CSV_TYPES:
                accepted = await uploads.submit_raw(self.sluice, request)
            else:
                metrics().uploads.labels("rejected").inc()
                return error_response(
                    415,
                    f"unsupported content type {content_type!r}: send text/csv, "
                    "application/x-ndjson, multipart/form-data or application/json",
                )
        except RequestError as exc:
            metrics().uploads.labels("rejected").inc()
            return error_response(exc.status, str(exc), field=exc.field)
        except BrokerUnavailable as exc:
            metrics().uploads.labels("unavailable").inc()
            return error_response(
                503,
                f"the job was not accepted: {exc}",
                headers={"Retry-After": str(BrokerUnavailable.retry_after)},
            )
        metrics().uploads.labels("accepted").inc()
        status_url = f"{API_PREFIX}/jobs/{accepted.job_id}"
        return web.json_response(
            {
                "jobId": accepted.job_id,
                "status": "queued",
                "estimatedTime": accepted.estimated_seconds,
                "totalRecords": accepted.total_records,
                "totalChunks": accepted.total_chunks,
                "statusUrl": status_url,
                "resultsUrl": f"{status_url}/results",
            },
            status=202,
            headers={"Location": status_url},
        )

    # -- status -------------------------------------------------------------------------------

    async def get_job(self, request: web.Request) -> web.StreamResponse:
        found = await self._job_on_its_owner(request)
        if isinstance(found, web.StreamResponse):
            return found
        _, view = found
        return web.json_response(view)

    async def cancel_job(self, request: web.Request) -> web.StreamResponse:
        found = await self._job_on_its_owner(request)
        if isinstance(found, web.StreamResponse):
            return found
        job, view = found
        if view["status"] in FINISHED:
            return error_response(409, f"job {job.id} is already {view['status']}")
        loop = asyncio.get_running_loop()
        marked = await loop.run_in_executor(
            None, job_registry.stop_job, self.sluice.engine, job.id, CANCELLED
        )
        if not marked and job.stopped != CANCELLED:
            return error_response(409, f"job {job.id} is already stopping ({job.stopped})")
        return web.json_response(
            {"jobId": job.id, "status": "cancelling", "statusUrl": f"{API_PREFIX}/jobs/{job.id}"},
            status=202,
        )

    async def delete_job(self, request: web.Request) -> web.StreamResponse:
        """Remove a finished job's results and metadata now (what retention does later)."""
        found = await self._job_on_its_owner(request)
        if isinstance(found, web.StreamResponse):
            return found
        job, view = found
        if view["status"] not in FINISHED:
            return error_response(409, f"job {job.id} is {view['status']}: cancel it first")
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, retention.remove_job, self.sluice.engine, job.id)
        await retention.announce_removed(self.sluice, [job.id], "deleted")
        return web.Response(status=204)

    async def _job_on_its_owner(
        self, request: web.Request
    ) -> web.StreamResponse | tuple[job_registry.JobRecord, dict[str, Any]]:
        """The job and its status view, answered here when this worker owns the job's progress
        partition; otherwise the owner's answer (the request is forwarded)."""
        job_id = request.match_info["job_id"]
        loop = asyncio.get_running_loop()
        job = await loop.run_in_executor(None, job_registry.get_job, self.sluice.engine, job_id)
        if job is None:
            return error_response(404, f"no job {job_id!r}")
        app = self.sluice.app
        if app.rebalancing or app.in_recovery:
            return error_response(
                503, "the worker is rebalancing; retry shortly", headers={"Retry-After": "1"}
            )
        try:
            owner = app.router.key_store(topics.PROGRESS_TABLE, job_id)
        except KeyError:
            return error_response(
                503,
                "partition owners are not known yet; retry shortly",
                headers={"Retry-After": "1"},
            )
        if str(owner).rstrip("/") != str(app.conf.canonical_url).rstrip("/"):
            if request.headers.get(ROUTED_HEADER):
                return error_response(
                    503,
                    "partition ownership is moving; retry shortly",
                    headers={"Retry-After": "1"},
                )
            return await self._forward(request, str(owner))
        state = self.sluice.progress_table.get(job_id)
        view = status_view(job_id, job.type, state, job.total_records)
        if job.error and view["status"] != "failed":
            view["status"], view["error"] = "failed", job.error
        expiry = retention.expires_at(
            self.sluice.settings,
            view["status"],
            retention.from_ms((state or {}).get("completedAt")),
        )
        view["expiresAt"] = _iso(expiry)
        view["resultsUrl"] = f"{API_PREFIX}/jobs/{job_id}/results"
        return job, view

    async def _forward(self, request: web.Request, owner: str) -> web.StreamResponse:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        url = owner.rstrip("/") + request.path_qs
        try:
            async with self._session.request(
                request.method, url, headers={ROUTED_HEADER: "1"}
            ) as answer:
                body = await answer.read()
                return web.Response(
                    body=body, status=answer.status, content_type=answer.content_type
                )
        except aiohttp.ClientError as exc:
            return error_response(
                503,
                f"the worker owning this job is unreachable ({exc})",
                headers={"Retry-After": "2"},
            )

    # -- operations ---------------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.StreamResponse:
        app = self.sluice.app
        ready = (
            self.sluice.state.chunk_partitions is not None
            and not app.rebalancing
            and not app.in_recovery
        )
        body = {"status": "ready" if ready else "starting", "worker": str(app.conf.canonical_url)}
        return web.json_response(body, status=200 if ready else 503)

    async def openapi(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text=OPENAPI_PATH.read_text(), content_type="application/yaml")

    async def prometheus(self, request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=generate_latest(metrics().registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST},
        )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def mount(sluice: Sluice) -> BatchApi:
    """Add the API's routes to the worker's Faust web server."""
    api = BatchApi(sluice)
    web: Any = sluice.app.web  # the aiohttp driver, which exposes its Application
    web.web_app.add_routes(api.routes())
    return api
