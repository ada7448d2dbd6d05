"""Download of export files on signed URLs; any worker serves them (streams/exports/)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiohttp import web

from api.errors import error_response
from streams.exports import signing
from streams.exports.storage import LocalStorage, valid_file_name, valid_job_id
from streams.runtime import Runtime


@dataclass(frozen=True)
class ExportApi:
    runtime: Runtime

    async def download(self, request: web.Request) -> web.StreamResponse:
        job_id, name = request.match_info["job_id"], request.match_info["filename"]
        settings = self.runtime.settings
        signing.check(
            signing.signing_key(settings),
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
