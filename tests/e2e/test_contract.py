"""The API keeps its contract under fuzzing: Schemathesis generates requests for every operation
of the document a live worker serves (/openapi.json) and sends them with an admin key; no answer
is a 5xx, and every answer is one the document describes (status, content type, headers, body).

Nothing is excluded. Generated requests create jobs and keys and ask for random ids, which is
what a client may do; the one thing kept out is revoking the key the test itself sends."""

from __future__ import annotations

import traceback
from typing import Any

import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
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
from tests.support.workers import TEST_API_KEY, Stack, bearer

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 25  # per operation: about 20 operations in well under a minute on one worker
OWN_PREFIX = key_prefix(TEST_API_KEY)


def fuzz(operation: Any, base_url: str, session: requests.Session) -> None:
    """Up to MAX_EXAMPLES generated requests for one operation, each answer checked."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=False,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    def one(case: Any) -> None:
        # revoking the test's own key would turn every later answer into a 401
        hypothesis.assume((case.path_parameters or {}).get("prefix") != OWN_PREFIX)
        response = case.call(
            base_url=base_url, session=session, headers=bearer(TEST_API_KEY), timeout=60
        )
        case.validate_response(response, checks=CHECKS, headers=bearer(TEST_API_KEY))

    one()


def test_the_live_api_keeps_its_contract(stack: Stack) -> None:
    worker = stack.worker().wait_ready()
    served = requests.get(f"{worker.url}/openapi.json", timeout=30).json()
    assert served == openapi_document()
    # from_dict, not from_url: from_url leaves out the operation serving the document itself
    schema = schemathesis.openapi.from_dict(served)
    schema.validate()
    failures: dict[str, str] = {}
    tested = []
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            tested.append(operation.label)
            try:
                fuzz(operation, worker.url, session)
            except (Exception, FailureGroup):  # FailureGroup is a BaseExceptionGroup
                failures[operation.label] = traceback.format_exc(limit=-3)
    assert not failures, (
        "\n\n".join(f"=== {label}\n{failure}" for label, failure in failures.items())
        + f"\n\nworker log:\n{worker.tail(40)}"
    )
    documented = {
        f"{method.upper()} {path}"
        for path, item in openapi_document()["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert set(tested) == documented
