"""Status lookups on the worker that owns the job's progress (streams/ownership.py).

A job's status lives in the job-progress table, partitioned like the progress topic; a worker
that does not own a job's partition forwards the request to the one that does, once (a request
already forwarded that meets another owner is told to retry: ownership is moving).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web

from api import paths
from api.auth import principal_of
from api.database import database
from api.errors import error_response
from api.views import job_view
from streams import ownership
from streams.exceptions import DatabaseUnavailable
from streams.runtime import Runtime
from streams.sink import jobs as job_registry

ROUTED_HEADER = "X-Sluice-Routed"
FORWARD_TIMEOUT_SECONDS = 10


def _retry_shortly(reason: str, seconds: int = 1) -> web.Response:
    return error_response(503, f"{reason}; retry shortly", headers={"Retry-After": str(seconds)})


class OwnerRouting:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_SECONDS)
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    async def job_here(
        self, request: web.Request, *, registry: bool = False
    ) -> web.StreamResponse | tuple[job_registry.JobRecord | None, dict[str, Any]]:
        """The job's registry row and its status view when this worker owns the job's
        progress; otherwise the answer to send back (the owner's, or why there is none now).
        While the database is away the status is still answered from the progress state
        (with no registry row), unless the caller needs the `registry` row itself."""
        job_id = request.match_info["job_id"]
        if not job_registry.valid_job_id(job_id):
            return error_response(404, f"no job {job_id[:40]!r}")
        app = self.runtime.app
        if app.rebalancing or app.in_recovery:
            return _retry_shortly("the worker is rebalancing")
        owner = ownership.owner_url(app, job_id)
        if owner is None:
            return _retry_shortly("partition owners are not known yet")
        if owner != ownership.own_url(app):
            if request.headers.get(ROUTED_HEADER):
                return _retry_shortly("partition ownership is moving")
            return await self._forward(request, owner)
        state = self.runtime.progress_table.get(job_id)
        try:
            job = await database(job_registry.get_job, self.runtime.engine, job_id)
        except DatabaseUnavailable:
            if registry or state is None or state.get("type") is None:
                raise
            job = None  # the progress state alone says how the job is doing
        else:
            if job is None:
                return error_response(404, f"no job {job_id!r}")
        tenant = job.tenant if job is not None else (state or {}).get("tenant")
        if tenant is None or not principal_of(request).sees(tenant):
            # another tenant's job is one that does not exist
            return error_response(404, f"no job {job_id!r}")
        return job, job_view(job_id, job, state, self.runtime.settings)

    async def _forward(self, request: web.Request, owner: str) -> web.StreamResponse:
        try:
            async with self.session.request(
                request.method, owner + request.path_qs, headers=_routed(request)
            ) as answer:
                body = await answer.read()
                return web.Response(
                    body=body, status=answer.status, content_type=answer.content_type
                )
        except aiohttp.ClientError as exc:
            return _retry_shortly(f"the worker owning this job is unreachable ({exc})", 2)

    async def replay_seen(self, request: web.Request, job_id: str, since_ms: int) -> bool:
        """Whether the job's status has taken in a replay requested at `since_ms` or later,
        asked of the job's owner (as the replay's caller); True too when no status knows the job
        (an upstream chunk's) or the caller may not read it."""
        job = await database(job_registry.get_job, self.runtime.engine, job_id)
        if job is None:
            return True
        app = self.runtime.app
        owner = ownership.owner_url(app, job_id)
        if owner is None or app.rebalancing or app.in_recovery:
            return False
        if owner == ownership.own_url(app):
            seen = (self.runtime.progress_table.get(job_id) or {}).get("lastReplayAt")
            return seen is not None and seen >= since_ms
        try:
            url = owner + paths.job_url(job_id)
            async with self.session.get(url, headers=_routed(request)) as answer:
                if answer.status in (401, 403, 404):
                    return True
                summary = (await answer.json())["summary"] if answer.status == 200 else {}
        except aiohttp.ClientError:
            return False
        seen_at = summary.get("lastReplayAt")
        return seen_at is not None and _ms(seen_at) >= since_ms


def _routed(request: web.Request) -> dict[str, str]:
    """Headers of a request passed on to the owner, which checks the caller's key again."""
    headers = {ROUTED_HEADER: "1"}
    if "Authorization" in request.headers:
        headers["Authorization"] = request.headers["Authorization"]
    return headers


def _ms(iso_time: str) -> int:
    return int(datetime.fromisoformat(iso_time.replace("Z", "+00:00")).timestamp() * 1000)
