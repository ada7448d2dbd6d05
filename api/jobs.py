"""HTTP routes for jobs: submit, status, cancel, delete."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from api import uploads
from api.database import database
from api.errors import error_response
from api.owners import OwnerRouting
from api.views import accepted_view, cancelling_view
from streams import retention
from streams.exceptions import BrokerUnavailable, DatabaseUnavailable, RequestError
from streams.metrics import metrics
from streams.parse import media_type
from streams.progress import FINISHED
from streams.runtime import Runtime
from streams.sink import jobs as job_registry

UNSUPPORTED = (
    "unsupported content type {!r}: send text/csv, application/x-ndjson, multipart/form-data "
    "or application/json"
)


@dataclass(frozen=True)
class JobsApi:
    runtime: Runtime
    owners: OwnerRouting

    async def submit(self, request: web.Request) -> web.StreamResponse:
        content_type = request.content_type
        try:
            if content_type == "application/json":
                accepted = await uploads.submit_inline(self.runtime, request)
            elif content_type == "multipart/form-data":
                accepted = await uploads.submit_multipart(self.runtime, request)
            elif media_type(content_type) is not None:
                accepted = await uploads.submit_raw(self.runtime, request)
            else:
                metrics().uploads.labels("rejected").inc()
                return error_response(415, UNSUPPORTED.format(content_type))
        except RequestError:
            metrics().uploads.labels("rejected").inc()
            raise  # answered by api/errors.py
        except (BrokerUnavailable, DatabaseUnavailable) as exc:
            metrics().uploads.labels("unavailable").inc()
            return error_response(
                503,
                f"the job was not accepted: {exc}; retry shortly",
                headers={"Retry-After": str(exc.retry_after)},
            )
        metrics().uploads.labels("accepted").inc()
        body = accepted_view(accepted)
        return web.json_response(body, status=202, headers={"Location": body["statusUrl"]})

    async def status(self, request: web.Request) -> web.StreamResponse:
        found = await self.owners.job_here(request)
        if isinstance(found, web.StreamResponse):
            return found
        return web.json_response(found[1])

    async def _registered(
        self, request: web.Request
    ) -> web.StreamResponse | tuple[job_registry.JobRecord, dict[str, Any]]:
        """The job's registry row and view, for what changes the registry (cancel, delete)."""
        found = await self.owners.job_here(request, registry=True)
        if isinstance(found, web.StreamResponse):
            return found
        job, view = found
        if job is None:  # job_here asked for the registry: it has the row, or it answered
            raise DatabaseUnavailable("the job registry cannot be read")
        return job, view

    async def cancel(self, request: web.Request) -> web.StreamResponse:
        found = await self._registered(request)
        if isinstance(found, web.StreamResponse):
            return found
        job, view = found
        if view["status"] in FINISHED:
            return error_response(409, f"job {job.id} is already {view['status']}")
        marked = await database(
            job_registry.stop_job, self.runtime.engine, job.id, job_registry.CANCELLED
        )
        if not marked and job.stopped != job_registry.CANCELLED:
            return error_response(409, f"job {job.id} is already stopping ({job.stopped})")
        return web.json_response(cancelling_view(job.id), status=202)

    async def delete(self, request: web.Request) -> web.StreamResponse:
        """Remove a finished job's results and metadata now (what retention does later)."""
        found = await self._registered(request)
        if isinstance(found, web.StreamResponse):
            return found
        job, view = found
        if view["status"] not in FINISHED:
            then = "delete it once it has ended" if job.stopped else "cancel it first"
            return error_response(409, f"job {job.id} is {view['status']}: {then}")
        await database(retention.remove_job, self.runtime.engine, job.id)
        await retention.announce_removed(self.runtime.progress_topic, [job.id], "deleted")
        return web.Response(status=204)
