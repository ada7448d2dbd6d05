"""Whose chunk this is: the tenant a chunk may act for.

The API splits the request of an authenticated key into chunks, and marks each with the header
`sluice-origin: <tenant> <job id> <HMAC-SHA256 of both under the signing key>`: Sluice vouches
for that tenant. A chunk without a valid mark was produced by an upstream system straight onto
the chunk topic; it may act only for a tenant SLUICE_UPSTREAM_TENANTS lists for that topic
(default: `default`). A chunk naming any other tenant is dead-lettered as TenantNotAllowed
before anything of it is applied, and is counted in no job (docs/security.md).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from streams.exceptions import PoisonMessage
from streams.models import Chunk

ORIGIN_HEADER = "sluice-origin"


class TenantNotAllowed(PoisonMessage):
    """The chunk names a tenant its producer may not act for."""


def _digest(key: bytes, tenant: str, job_id: str) -> str:
    return hmac.new(key, f"{tenant}\n{job_id}".encode(), hashlib.sha256).hexdigest()


def origin_mark(key: bytes, tenant: str, job_id: str) -> bytes:
    return f"{tenant} {job_id} {_digest(key, tenant, job_id)}".encode()


def _header(headers: Any, name: str) -> bytes | None:
    pairs = headers.items() if isinstance(headers, dict) else headers or ()
    for header, value in pairs:
        if header == name and value is not None:
            return bytes(value)
    return None


def vouched(key: bytes, headers: Any) -> tuple[str, str] | None:
    """(tenant, job id) when the message carries a valid mark of Sluice's API, else None."""
    mark = _header(headers, ORIGIN_HEADER)
    if mark is None:
        return None
    tenant, _, rest = mark.decode(errors="replace").partition(" ")
    job_id, _, digest = rest.partition(" ")
    if not hmac.compare_digest(_digest(key, tenant, job_id).encode(), digest.encode()):
        return None
    return tenant, job_id


@dataclass(frozen=True)
class TenantCheck:
    """What a writer checks of a decoded chunk before applying it."""

    vouched: tuple[str, str] | None  # what the API vouched for, if anything
    upstream: frozenset[str]  # the tenants an unvouched (upstream) chunk may name

    @classmethod
    def of(cls, key: bytes, headers: Any, upstream: Iterable[str]) -> TenantCheck:
        return cls(vouched(key, headers), frozenset(upstream))

    def vouches(self, chunk: Chunk) -> bool:
        """Sluice's API or intake made this chunk, for this tenant and job."""
        return self.vouched == (chunk.tenant, chunk.job_id)

    def check(self, chunk: Chunk) -> None:
        if self.vouches(chunk) or chunk.tenant in self.upstream:
            return
        raise TenantNotAllowed(
            f"the chunk names tenant {chunk.tenant[:64]!r}, which its producer may not act for "
            f"(upstream chunks may name {', '.join(sorted(self.upstream)) or 'no tenant'}: "
            "SLUICE_UPSTREAM_TENANTS)"
        )
