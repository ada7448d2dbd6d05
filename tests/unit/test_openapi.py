"""The OpenAPI document stays true to the routes and options the code serves."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import yaml

from api.http import routes
from api.operations import OPENAPI_PATH
from streams.jobtypes import JOB_TYPES
from streams.options import COMMON_OPTIONS


def _document() -> dict:
    return yaml.safe_load(Path(OPENAPI_PATH).read_text())


def test_every_route_is_documented() -> None:
    documented = {
        (
            path.replace("{jobId}", "{job_id}").replace("{deadLetterId}", "{dead_letter_id}"),
            method.upper(),
        )
        for path, item in _document()["paths"].items()
        for method in item
    }
    served = {(route.path, route.method) for route in routes(cast(Any, None))}
    assert served == documented


def test_every_option_is_documented() -> None:
    post = _document()["paths"]["/api/batch/jobs"]["post"]
    documented = {p["name"] for p in post["parameters"] if p["in"] == "query"} - {"type"}
    options = set(COMMON_OPTIONS)
    for job_type in JOB_TYPES.values():
        options |= set(job_type.extra_options)
    assert documented == options
    (type_parameter,) = (p for p in post["parameters"] if p["name"] == "type")
    enum = type_parameter["schema"]["enum"]
    assert set(enum) == set(JOB_TYPES)
