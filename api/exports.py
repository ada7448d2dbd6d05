"""Download of export files on signed URLs; any worker serves them (streams/exports/).

The signed link is the credential: it names the file and is signed for the job's tenant
(which the registry says), so it works without a key. A request that also carries a key is
answered only for a key that sees the job's tenant: anyone else gets the 404 of a job that
does not exist."""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiohttp import web

from api.auth import KeyCheck, optional_principal
from api.database import database
from api.errors import error_response
from streams.exports import signing
from streams.exports.storage import LocalStorage, valid_file_name, valid_job_id
from streams.runtime import Runtime
from streams.sink import jobs as job_registry


@dataclass(frozen=True)
class ExportApi:
    runtime: Runtime
    keys: KeyCheck

    async def download(self, request: web.Request) -> web.StreamResponse:
        job_id, name = request.match_info["job_id"], request.match_info["filename"]
        settings = self.runtime.settings
        principal = await optional_principal(self.keys, request)
        job = None
        if valid_job_id(job_id):
            job = await database(job_registry.get_job, self.runtime.engine, job_id)
        if job is None or (principal is not None and not principal.sees(job.tenant)):
            return error_response(404, f"no export file {job_id[:40]}/{name[:80]}")
        signing.check(
            signing.signing_key(settings),
            job.tenant,
            job_id,
            name,
            request.query.get("expires"),
            request.query.get("signature"),
            time.time(),
        )
        if not (valid_job_id(job_id) and valid_file_name(name)):
            return error_response(404, f"no export file {job_id}/{name}")
        path = LocalStorage(settings.export_dir).path(job_id, name)
        if not path.is_file():
            return error_response(404, f"no export file {job_id}/{name} (removed, or never made)")
        return web.FileResponse(
            path,
            headers={
                "Content-Type": "application/gzip",
                "Content-Disposition": f'attachment; filename="{name}"',
                "Cache-Control": "private, no-store",
            },
        )
