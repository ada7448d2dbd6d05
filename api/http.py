"""The thin HTTP API, served by every worker on its Faust web server: each resource's routes,
mounted together. Routes call streams/ functions; api/views.py shapes every answer."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api.deadletters import DeadLetterApi
from api.exports import ExportApi
from api.jobs import JobsApi
from api.operations import OperationsApi
from api.owners import OwnerRouting
from api.results import ResultsApi
from streams.runtime import Runtime


def routes(runtime: Runtime) -> list[web.RouteDef]:
    owners = OwnerRouting(runtime)
    return [
        *DeadLetterApi(runtime, owners).routes(),
        *ResultsApi(runtime).routes(),
        *ExportApi(runtime).routes(),
        *JobsApi(runtime, owners).routes(),
        *OperationsApi(runtime).routes(),
    ]


def mount(runtime: Runtime) -> None:
    """Add the API's routes to the worker's Faust web server."""
    web_server: Any = runtime.app.web  # the aiohttp driver, which exposes its Application
    web_server.web_app.add_routes(routes(runtime))
