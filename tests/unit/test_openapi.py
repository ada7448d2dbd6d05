"""The OpenAPI document stays true to the routes, scopes and options the code serves, and is a
valid OpenAPI 3.1 document."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import jsonschema_rs
import pytest
import schemathesis
import yaml

from api.http import routes
from api.operations import OPENAPI_PATH, openapi_document
from streams.access import KEY_PREFIX, PREFIX_CHARS, SCOPES, TENANT_RULE, new_key, valid_tenant
from streams.jobtypes import JOB_TYPES
from streams.options import COMMON_OPTIONS

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
# the handlers' names for path parameters, and the document's
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
PARAMETER_NAMES = {"{jobId}": "{job_id}", "{deadLetterId}": "{dead_letter_id}"}


def _document() -> dict:
    return yaml.safe_load(Path(OPENAPI_PATH).read_text())


def _served_path(documented: str) -> str:
    for name, served in PARAMETER_NAMES.items():
        documented = documented.replace(name, served)
    return documented


def _operations(document: dict) -> Iterator[tuple[str, str, dict]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield _served_path(path), method.upper(), operation


def _served() -> dict[tuple[str, str], str | None]:
    """(path, method) → the scope its key needs (None: open to anyone)."""
    return {
        (route.path, route.method): getattr(route.handler, "scope", None)
        for route in routes(cast(Any, None))
    }


def test_every_route_is_documented() -> None:
    documented = {(path, method) for path, method, _ in _operations(_document())}
    assert set(_served()) == documented


def test_the_document_says_which_routes_are_open_and_which_scope_the_others_need() -> None:
    document, served = _document(), _served()
    assert document["security"] == [{"bearerAuth": []}]
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for path, method, operation in _operations(document):
        scope = served[(path, method)]
        where = f"{method} {path}"
        if scope is None:
            assert operation.get("security") == [], where
            assert "x-required-scope" not in operation, where
            assert "Open" in operation["description"], where
        else:
            assert "security" not in operation, where  # the global bearerAuth
            assert operation["x-required-scope"] == scope, where
            assert f"`{scope}` scope" in operation["description"], where
            for status in ("401", "403", "503"):
                assert status in operation["responses"], (where, status)


def test_every_error_answer_is_the_error_shape() -> None:
    document = _document()
    shared = document["components"]["responses"]
    for path, method, operation in _operations(document):
        for status, response in operation["responses"].items():
            if int(status) < 400 or path == "/api/health":  # health: 503 is "starting"
                continue
            if "$ref" in response:
                response = shared[response["$ref"].rsplit("/", 1)[-1]]
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)
    challenge = shared["Unauthorized"]["headers"]["WWW-Authenticate"]
    assert challenge == {"$ref": "#/components/headers/WWWAuthenticate"}
    assert document["components"]["headers"]["WWWAuthenticate"]["schema"]["const"] == (
        'Bearer realm="sluice"'
    )


def test_formats_match_the_code() -> None:
    schemas = _document()["components"]["schemas"]
    tenant = re.compile(schemas["Tenant"]["pattern"])
    for name in ("default", "acme.eu-1", "A" * 64):
        assert valid_tenant(name) and tenant.fullmatch(name), name
    for name in ("", "-x", "a" * 65, "a b", "ä"):
        assert not valid_tenant(name) and not tenant.fullmatch(name), name
    assert schemas["Tenant"]["description"] == TENANT_RULE
    key = new_key()
    assert key.startswith(KEY_PREFIX)
    assert re.fullmatch(schemas["KeyPrefix"]["pattern"], key[:PREFIX_CHARS])
    created = _document()["paths"]["/api/keys"]["post"]["responses"]["201"]
    key_schema = created["content"]["application/json"]["schema"]["allOf"][1]
    assert re.fullmatch(key_schema["properties"]["key"]["pattern"], key)
    assert schemas["Scope"]["enum"] == list(SCOPES)
    assert set(schemas["JobType"]["enum"]) == set(JOB_TYPES)
    assert "X-Sluice-Tenant" not in Path(OPENAPI_PATH).read_text()


def test_every_option_is_documented() -> None:
    post = _document()["paths"]["/api/batch/jobs"]["post"]
    query = [p for p in post["parameters"] if p.get("in") == "query"]  # not the shared ones
    documented = {p["name"] for p in query} - {"type"}
    options = set(COMMON_OPTIONS)
    for job_type in JOB_TYPES.values():
        options |= set(job_type.extra_options)
    assert documented == options
    (type_parameter,) = (p for p in query if p["name"] == "type")
    assert type_parameter["schema"] == {"$ref": "#/components/schemas/JobType"}
    inline = post["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert {shape["properties"]["type"]["const"] for shape in inline} == set(JOB_TYPES)


def _schemas(node: Any) -> Iterator[dict]:
    """Every Schema Object the document holds (under a `schema` or `schemas` key)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "schema" and isinstance(value, dict):
                yield value
            elif key == "schemas" and isinstance(value, dict):
                yield from value.values()
            yield from _schemas(value)
    elif isinstance(node, list):
        for item in node:
            yield from _schemas(item)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_every_reference_resolves() -> None:
    document = _document()
    for ref in _refs(document):
        assert ref.startswith("#/"), ref
        node: Any = document
        for part in ref[2:].split("/"):
            node = node[part]  # KeyError: a dangling reference
        assert isinstance(node, dict), ref


def test_the_document_is_valid_openapi_3_1() -> None:
    document = openapi_document()  # what /openapi.json serves
    assert document["openapi"] == "3.1.0"
    schemathesis.openapi.from_dict(document).validate()  # the OpenAPI 3.1 meta-schema
    for schema in _schemas(document):  # each schema against JSON Schema 2020-12
        jsonschema_rs.meta.validate({"$schema": DRAFT_2020_12, **schema})


@pytest.mark.parametrize("bad", [{"openapi": "3.1.0", "info": {}}, {"openapi": "3.1.0"}])
def test_the_validator_refuses_a_broken_document(bad: dict) -> None:
    with pytest.raises(jsonschema_rs.ValidationError):
        schemathesis.openapi.from_dict(bad).validate()
