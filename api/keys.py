"""HTTP routes for API keys (admin scope): list, create, revoke; `sluice keys` does the same
against the database directly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from api.auth import tenant_named
from api.bodies import BodyLimits, encoding_of, read_whole
from api.database import database
from api.views import key_view
from streams.access import DEFAULT_SCOPES, PREFIX_CHARS, TENANT_RULE, parse_scopes, valid_tenant
from streams.exceptions import RequestError
from streams.parse import json_body
from streams.runtime import Runtime
from streams.sink import keys

KEY_FIELDS = {"tenant", "scopes", "name"}
MAX_NAME_CHARS = 200


def _new_key_request(body: Any) -> tuple[str, tuple[str, ...], str | None]:
    if not isinstance(body, dict):
        raise RequestError("the body must be a JSON object")
    unknown = sorted(set(body) - KEY_FIELDS)
    if unknown:
        raise RequestError(f"unknown field {unknown[0]!r}", field=unknown[0])
    tenant = body.get("tenant")
    if not isinstance(tenant, str) or not valid_tenant(tenant):
        raise RequestError(f"tenant must be {TENANT_RULE}", field="tenant")
    scopes = body.get("scopes", list(DEFAULT_SCOPES))
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise RequestError("scopes must be a list of scope names", field="scopes")
    try:
        chosen = parse_scopes(scopes)
    except ValueError as exc:
        raise RequestError(str(exc), field="scopes") from None
    name = body.get("name")
    if name is not None and (
        not isinstance(name, str) or len(name) > MAX_NAME_CHARS or not name.isprintable()
    ):
        raise RequestError(
            f"name must be printable text of at most {MAX_NAME_CHARS} characters", field="name"
        )
    return tenant, chosen, name


@dataclass(frozen=True)
class KeysApi:
    runtime: Runtime

    async def list_keys(self, request: web.Request) -> web.StreamResponse:
        tenant = tenant_named(request.query.get("tenant"))
        found = await database(keys.list_keys, self.runtime.engine, tenant)
        return web.json_response({"items": [key_view(record) for record in found]})

    async def create(self, request: web.Request) -> web.StreamResponse:
        limits = BodyLimits.field(self.runtime.settings)
        raw = await read_whole(request.content.read, limits, encoding_of(request))
        tenant, scopes, name = _new_key_request(json_body(raw, 2))
        key, record = await database(keys.create_key, self.runtime.engine, tenant, scopes, name)
        return web.json_response({**key_view(record), "key": key}, status=201)

    async def revoke(self, request: web.Request) -> web.StreamResponse:
        prefix = request.match_info["prefix"]
        record = None
        if len(prefix) == PREFIX_CHARS:
            record = await database(keys.revoke_key, self.runtime.engine, prefix)
        if record is None:
            raise RequestError(f"no API key {prefix[:PREFIX_CHARS]!r}", status=404)
        return web.json_response(key_view(record))
