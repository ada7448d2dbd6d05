"""The thin HTTP API, served by every worker on its Faust web server: the whole surface in
one table, each route to its resource's handler. Handlers call streams/ functions;
api/views.py shapes every answer, api/paths.py every URL."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api.auth import Handler, KeyCheck, guarded
from api.deadletters import DeadLetterApi
from api.errors import errors_as_json
from api.exports import ExportApi
from api.jobs import JobsApi
from api.keys import KeysApi
from api.operations import OperationsApi
from api.owners import OwnerRouting
from api.paths import DLQ, EXPORTS, JOBS, KEYS
from api.results import ResultsApi
from streams.access import ADMIN, DEFAULT_TENANT, READ, SCOPES, SUBMIT
from streams.access import DLQ as DLQ_SCOPE
from streams.config import Settings
from streams.runtime import Runtime
from streams.sink.keys import ensure_key
from streams.worker.dev_key import dev_key_path, saved_dev_key


def routes(runtime: Runtime) -> list[web.RouteDef]:
    """Every route, with the scope its key needs (none: open to anyone)."""
    owners, keys = OwnerRouting(runtime), KeyCheck(runtime)
    jobs, results = JobsApi(runtime, owners), ResultsApi(runtime)
    letters, exports, operations = (
        DeadLetterApi(runtime, owners),
        ExportApi(runtime, keys),
        OperationsApi(runtime),
    )
    api_keys = KeysApi(runtime)

    def needs(scope: str, handler: Handler) -> Handler:
        return guarded(keys, scope, handler)

    job = f"{JOBS}/{{job_id}}"
    return [
        web.get(DLQ, needs(DLQ_SCOPE, letters.list_letters)),
        web.post(f"{DLQ}/replay", needs(DLQ_SCOPE, letters.replay)),
        web.get(f"{DLQ}/{{dead_letter_id}}", needs(DLQ_SCOPE, letters.show)),
        web.get(JOBS, needs(READ, results.list_jobs)),
        web.get(f"{job}/results", needs(READ, results.results)),
        web.get(f"{job}/results.csv", needs(READ, results.failed_csv)),
        web.get(f"{job}/results.ndjson", needs(READ, results.failed_ndjson)),
        web.get(f"{job}/errors", needs(READ, results.errors)),
        web.get(f"{EXPORTS}/{{job_id}}/{{filename}}", exports.download),  # the link is signed
        web.post(JOBS, needs(SUBMIT, jobs.submit)),
        web.get(job, needs(READ, jobs.status)),
        web.post(f"{job}/cancel", needs(SUBMIT, jobs.cancel)),
        web.delete(job, needs(SUBMIT, jobs.delete)),
        web.get(KEYS, needs(ADMIN, api_keys.list_keys)),
        web.post(KEYS, needs(ADMIN, api_keys.create)),
        web.delete(f"{KEYS}/{{prefix}}", needs(ADMIN, api_keys.revoke)),
        web.get("/api/health", operations.health),
        web.get("/api/openapi.yaml", operations.openapi),
        web.get("/openapi.json", operations.openapi_json),
        web.get("/metrics", operations.prometheus),
    ]


def web_options(settings: Settings) -> dict[str, Any]:
    """The aiohttp Application's own request handling: bodies reach the handlers as sent, to be
    inflated off the event loop within the upload limits (api/bodies.py); a connection must
    send a request's headers within SLUICE_HEADER_TIMEOUT of opening (or of its last answer),
    else it is closed: aiohttp's keep-alive timer, which closes a connection still waiting for
    a request's headers, and never one whose request is being handled."""
    return {
        "handler_args": {
            "auto_decompress": False,
            "keepalive_timeout": settings.header_timeout,
        }
    }


DEV_KEY_NAME = "development key (SLUICE_DEV_API_KEY)"


def welcome(settings: Settings) -> str:
    """Where a person finds the API of a worker that is ready, and a first job to submit (its
    URL given, so that the command talks to this worker whatever SLUICE_API_URL says)."""
    host = "127.0.0.1" if settings.api_host in ("", "0.0.0.0", "::") else settings.api_host
    url = f"http://{host}:{settings.api_port}"
    key = (
        f"$(cat {dev_key_path(settings)})"
        if saved_dev_key(settings) == settings.dev_api_key.get_secret_value()
        else "$SLUICE_API_KEY"
    )
    return (
        f"API: {url}\n"
        f"Submit a job:\n"
        f"  .venv/bin/sluice submit docs/examples/users.csv --type user-import "
        f"--opt skipDuplicates=true --follow --api-url {url}\n"
        f'  curl -X POST -H "Authorization: Bearer {key}" -H "Content-Type: text/csv" '
        f"--data-binary @docs/examples/users.csv '{url}{JOBS}?type=user-import'\n"
    )


def mount(runtime: Runtime) -> None:
    """Add the API's routes to the worker's Faust web server; make sure the development key
    exists when SLUICE_DEV_API_KEY names one."""
    dev_key = runtime.settings.dev_api_key.get_secret_value()
    if dev_key:
        ensure_key(runtime.engine, dev_key, DEFAULT_TENANT, SCOPES, DEV_KEY_NAME)
    web_server: Any = runtime.app.web  # the aiohttp driver, which exposes its Application
    web_server.web_app.middlewares.append(errors_as_json)
    web_server.web_app.add_routes(routes(runtime))
