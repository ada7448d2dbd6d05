"""HTTP routes for operators: readiness, the OpenAPI document, Prometheus metrics."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.metrics import metrics
from streams.runtime import Runtime
from streams.worker.ready import is_ready

OPENAPI_PATH = Path(__file__).with_name("openapi.yaml")


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    """The OpenAPI document (api/openapi.yaml), as the JSON /openapi.json serves."""
    document: dict[str, Any] = yaml.safe_load(OPENAPI_PATH.read_text())
    return document


@dataclass(frozen=True)
class OperationsApi:
    runtime: Runtime

    async def health(self, request: web.Request) -> web.StreamResponse:
        ready = is_ready(self.runtime)
        worker = str(self.runtime.app.conf.canonical_url)
        body = {"status": "ready" if ready else "starting", "worker": worker}
        return web.json_response(body, status=200 if ready else 503)

    async def openapi(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text=OPENAPI_PATH.read_text(), content_type="application/yaml")

    async def openapi_json(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(openapi_document())

    async def prometheus(self, request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=generate_latest(metrics().registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST},
        )
