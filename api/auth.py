"""Who is asking: the principal behind `Authorization: Bearer <key>`, and the scope each route
needs (api/http.py names it per route; health, readiness, metrics and the OpenAPI document need
none, and a signed download link is its own credential).

Every request looks its key up in the database, so a revoked key fails at once on every
worker. Only while the database cannot be read is a key the database confirmed in the last
`CONFIRMED_SECONDS` still accepted, so that status lookups keep answering through an outage.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from aiohttp import web

from api.database import database
from streams.access import TENANT_RULE, Principal, key_hash, key_problem, valid_tenant
from streams.exceptions import (
    DatabaseUnavailable,
    NotAuthenticated,
    NotPermitted,
    RequestError,
)
from streams.runtime import Runtime
from streams.sink.keys import find_key

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CONFIRMED_SECONDS = 300.0
MAX_CONFIRMED = 10_000
_PRINCIPAL = "sluice.principal"


class KeyCheck:
    """Keys to principals, through the database."""

    def __init__(self, runtime: Runtime):
        self._runtime = runtime
        self._confirmed: OrderedDict[str, tuple[float, Principal]] = OrderedDict()

    async def principal(self, request: web.Request) -> Principal:
        key = bearer_key(request)
        hashed = key_hash(key)
        try:
            record = await database(find_key, self._runtime.engine, key)
        except DatabaseUnavailable:
            confirmed = self._confirmed.get(hashed)
            if confirmed is None or time.monotonic() - confirmed[0] > CONFIRMED_SECONDS:
                raise
            return confirmed[1]
        if record is None:
            self._confirmed.pop(hashed, None)
            raise NotAuthenticated("the API key is not valid: unknown, or revoked")
        self._confirmed[hashed] = (time.monotonic(), record.principal)
        self._confirmed.move_to_end(hashed)
        if len(self._confirmed) > MAX_CONFIRMED:
            self._confirmed.popitem(last=False)
        return record.principal


def bearer_key(request: web.Request) -> str:
    header = request.headers.get("Authorization")
    if header is None:
        raise NotAuthenticated(
            "this endpoint needs an API key: send `Authorization: Bearer <key>` "
            "(`sluice keys create` makes one)"
        )
    scheme, _, key = header.strip().partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise NotAuthenticated("the Authorization header must be `Bearer <key>`")
    if key_problem(key) is not None:
        raise NotAuthenticated("the API key is not valid: unknown, or revoked")
    return key


def guarded(keys: KeyCheck, scope: str, handler: Handler) -> Handler:
    """`handler`, answered only for a valid key with `scope` (admin has every scope)."""

    async def with_principal(request: web.Request) -> web.StreamResponse:
        principal = await keys.principal(request)
        if not principal.may(scope):
            raise NotPermitted(
                f"this key (tenant {principal.tenant!r}) does not have the {scope!r} scope"
            )
        request[_PRINCIPAL] = principal
        return await handler(request)

    with_principal.scope = scope  # type: ignore[attr-defined]  # read by the tests and docs
    return with_principal


async def optional_principal(keys: KeyCheck, request: web.Request) -> Principal | None:
    """The principal when the request carries a key (a signed download may come without)."""
    if "Authorization" not in request.headers:
        return None
    return await keys.principal(request)


def principal_of(request: web.Request) -> Principal:
    """The principal `guarded` found for this request."""
    principal: Principal = request[_PRINCIPAL]
    return principal


def tenant_named(value: object) -> str | None:
    """A `tenant` the request names (a query parameter or body field): None when absent."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not valid_tenant(value):
        raise RequestError(f"tenant must be {TENANT_RULE}", field="tenant")
    return value


def tenant_seen(request: web.Request, named: object) -> str | None:
    """Whose resources a listing or replay covers: the key's tenant; for an admin key, the
    tenant it names, or every tenant (None) when it names none."""
    principal, tenant = principal_of(request), tenant_named(named)
    if principal.admin:
        return tenant
    if tenant is not None and tenant != principal.tenant:
        raise NotPermitted("only an admin key may name another tenant")
    return principal.tenant
