"""The thin HTTP API, served by every worker on its Faust web server: the whole surface in
one table, each route to its resource's handler. Handlers call streams/ functions;
api/views.py shapes every answer, api/paths.py every URL."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api.deadletters import DeadLetterApi
from api.errors import errors_as_json
from api.exports import ExportApi
from api.jobs import JobsApi
from api.operations import OperationsApi
from api.owners import OwnerRouting
from api.paths import DLQ, EXPORTS, JOBS
from api.results import ResultsApi
from streams.config import Settings
from streams.runtime import Runtime


def routes(runtime: Runtime) -> list[web.RouteDef]:
    owners = OwnerRouting(runtime)
    jobs, results = JobsApi(runtime, owners), ResultsApi(runtime)
    letters, exports, operations = (
        DeadLetterApi(runtime, owners),
        ExportApi(runtime),
        OperationsApi(runtime),
    )
    job = f"{JOBS}/{{job_id}}"
    return [
        web.get(DLQ, letters.list_letters),
        web.post(f"{DLQ}/replay", letters.replay),
        web.get(f"{DLQ}/{{dead_letter_id}}", letters.show),
        web.get(JOBS, results.list_jobs),
        web.get(f"{job}/results", results.results),
        web.get(f"{job}/results.csv", results.failed_csv),
        web.get(f"{job}/results.ndjson", results.failed_ndjson),
        web.get(f"{job}/errors", results.errors),
        web.get(f"{EXPORTS}/{{job_id}}/{{filename}}", exports.download),
        web.post(JOBS, jobs.submit),
        web.get(job, jobs.status),
        web.post(f"{job}/cancel", jobs.cancel),
        web.delete(job, jobs.delete),
        web.get("/api/health", operations.health),
        web.get("/api/openapi.yaml", operations.openapi),
        web.get("/metrics", operations.prometheus),
    ]


# The aiohttp Application's own request handling: bodies reach the handlers as sent, to be
# inflated off the event loop within the upload limits (api/bodies.py).
WEB_OPTIONS = {"handler_args": {"auto_decompress": False}}


def welcome(settings: Settings) -> str:
    """Where a person finds the API of a worker just started, and a first job to submit."""
    url = f"http://{settings.api_host}:{settings.api_port}"
    return (
        f"API: {url}  (ready once `curl {url}/api/health` answers 200)\n"
        f"Submit a job:\n"
        f"  .venv/bin/sluice submit docs/examples/users.csv --type user-import "
        f"--opt skipDuplicates=true --follow\n"
        f"  curl -X POST -H 'Content-Type: text/csv' --data-binary @docs/examples/users.csv "
        f"'{url}{JOBS}?type=user-import'\n"
    )


def mount(runtime: Runtime) -> None:
    """Add the API's routes to the worker's Faust web server."""
    web_server: Any = runtime.app.web  # the aiohttp driver, which exposes its Application
    web_server.web_app.middlewares.append(errors_as_json)
    web_server.web_app.add_routes(routes(runtime))
