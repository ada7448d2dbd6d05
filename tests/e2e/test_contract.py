"""The API keeps its contract under fuzzing: Schemathesis generates requests for every operation
of the document a live worker serves (/openapi.json) and sends them with an admin key; no answer
is a 5xx, and every answer is one the document describes (status, content type, headers, body).

Each operation is fuzzed with valid inputs (positive) and, when it takes any, invalid ones
(negative). Random ids name nothing, so the operations on a job, an export file or a dead letter
are fuzzed once more aimed at real ones (an import with a failed record, a finished export, a
dead letter): their 200 answers are checked too. Nothing is excluded; generated requests create
jobs and keys, cancel, delete and replay, as a client may. The one thing kept out is revoking the
key the test itself sends."""

from __future__ import annotations

import asyncio
import json
import traceback
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.operations import openapi_document
from streams.access import key_prefix
from tests.support.kafka_io import eventually, produce
from tests.support.workers import TEST_API_KEY, Stack, Worker, bearer, http

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 25  # per operation and mode: all of it in well under a minute on one worker
AIMED_EXAMPLES = 10  # per operation and real resource
OWN_PREFIX = key_prefix(TEST_API_KEY)
CSV = b"email,name,age\r\nada@example.com,Ada,36\r\nbad-email,Bob,200\r\n"

Fixed = dict[str, dict[str, str]]  # as_strategy's path_parameters / query


def fuzz(
    operation: Any, mode: GenerationMode, base_url: str, examples: int, fixed: Fixed | None = None
) -> None:
    """Up to `examples` generated requests for one operation, each answer checked."""

    @given(case=operation.as_strategy(generation_mode=mode, **(fixed or {})))
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    def one(case: Any) -> None:
        # revoking the test's own key would turn every later answer into a 401
        hypothesis.assume((case.path_parameters or {}).get("prefix") != OWN_PREFIX)
        response = case.call(base_url=base_url, headers=bearer(TEST_API_KEY), timeout=60)
        case.validate_response(response, checks=CHECKS, headers=bearer(TEST_API_KEY))

    one()


def real_resources(stack: Stack, worker: Worker) -> dict[str, list[Fixed]]:
    """Real resources for the operations that name one: documented path → fixed inputs."""
    headers = {"Content-Type": "application/json"}
    imported = stack.submit_csv(worker, CSV)["jobId"]
    stack.wait_finished(worker, imported)
    body = json.dumps({"type": "user-export", "options": {"format": "ndjson"}}).encode()
    status, accepted = http("POST", f"{worker.url}/api/batch/jobs", body, headers)
    assert status == 202, accepted
    exported = stack.wait_finished(worker, accepted["jobId"])
    assert exported["status"] == "completed", exported
    link = urlsplit(exported["result"]["downloadUrl"])
    file = link.path.rsplit("/", 1)[-1]
    # bytes that are no chunk: dead-lettered at once, seen by admin keys
    asyncio.run(produce(stack.bootstrap_servers, f"{stack.app_id}.chunks", 0, [(b"k", b"junk")]))
    letters = eventually(
        lambda: http("GET", f"{worker.url}/api/batch/dlq")[1]["items"], "a dead letter", 60
    )
    jobs = [{"path_parameters": {"jobId": job}} for job in (imported, exported["jobId"])]
    download = {"jobId": exported["jobId"], "filename": file}
    return {
        "/api/batch/jobs/{jobId}": jobs,
        "/api/batch/jobs/{jobId}/cancel": jobs,
        "/api/batch/jobs/{jobId}/results": jobs,
        "/api/batch/jobs/{jobId}/results.csv": jobs,
        "/api/batch/jobs/{jobId}/results.ndjson": jobs,
        "/api/batch/jobs/{jobId}/errors": jobs,
        "/api/batch/exports/{jobId}/{filename}": [
            {"path_parameters": download},
            {"path_parameters": download, "query": dict(parse_qsl(link.query))},
        ],
        "/api/batch/dlq/{deadLetterId}": [{"path_parameters": {"deadLetterId": letters[0]["id"]}}],
    }


def test_the_live_api_keeps_its_contract(stack: Stack) -> None:
    worker = stack.worker().wait_ready()
    served = requests.get(f"{worker.url}/openapi.json", timeout=30).json()
    assert served == openapi_document()
    # from_dict, not from_url: from_url leaves out the operation serving the document itself
    schema = schemathesis.openapi.from_dict(served)
    schema.validate()
    aimed = real_resources(stack, worker)
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    # deleting a real job comes last: the other operations aim at it first
    operations.sort(key=lambda operation: operation.method.upper() == "DELETE")
    for operation in operations:
        runs: list[tuple[GenerationMode, int, Fixed | None]] = [
            (GenerationMode.POSITIVE, MAX_EXAMPLES, None)
        ]
        if operation.path_parameters or operation.query or operation.body:
            runs.append((GenerationMode.NEGATIVE, MAX_EXAMPLES, None))
        for fixed in aimed.get(operation.path, []):
            runs.append((GenerationMode.POSITIVE, AIMED_EXAMPLES, fixed))
        for mode, examples, fixed in runs:
            try:
                fuzz(operation, mode, worker.url, examples, fixed)
            except (Exception, FailureGroup):  # FailureGroup is a BaseExceptionGroup
                where = f"{operation.label} ({mode.value}{', ' + str(fixed) if fixed else ''})"
                failures[where] = traceback.format_exc(limit=-3)
    assert not failures, (
        "\n\n".join(f"=== {label}\n{failure}" for label, failure in failures.items())
        + f"\n\nworker log:\n{worker.tail(40)}"
    )
    documented = {
        f"{method.upper()} {path}"
        for path, item in served["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert {operation.label for operation in operations} == documented
