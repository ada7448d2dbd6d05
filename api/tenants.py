"""Who is asking: the tenant a request acts for (no authentication yet, so it is a header)."""

from __future__ import annotations

import re

from aiohttp import web

from streams.exceptions import RequestError
from streams.submit import DEFAULT_TENANT

TENANT_HEADER = "X-Sluice-Tenant"
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def tenant_of(request: web.Request) -> str:
    tenant = request.headers.get(TENANT_HEADER, DEFAULT_TENANT)
    if not _TENANT.match(tenant):
        raise RequestError(
            f"{TENANT_HEADER} must be 1-64 letters, digits, '.', '_' or '-'", field=TENANT_HEADER
        )
    return tenant
