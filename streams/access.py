"""Who may do what: API keys, their scopes, and the principal a key stands for.

A key is `sluice_` and 43 random URL-safe characters. Only its SHA-256 is stored
(streams/sink/keys.py); its first characters (the prefix) name it in listings and revocations.
A key belongs to one tenant and carries scopes; `admin` is every scope, across tenants.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

SUBMIT, READ, DLQ, ADMIN = "submit", "read", "dlq", "admin"
SCOPES = (SUBMIT, READ, DLQ, ADMIN)
SCOPE_MEANINGS = {
    SUBMIT: "submit jobs, cancel and delete the tenant's jobs",
    READ: "the tenant's jobs: listing, status, results, errors, failed records",
    DLQ: "the tenant's dead letters: list, show, replay",
    ADMIN: "every scope, for every tenant; manage API keys",
}
DEFAULT_SCOPES = (SUBMIT, READ)
DEFAULT_TENANT = "default"

KEY_PREFIX = "sluice_"
PREFIX_CHARS = len(KEY_PREFIX) + 8  # what listings show of a key
MIN_KEY_CHARS = 32
MAX_KEY_CHARS = 256
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
TENANT_RULE = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"


def valid_tenant(name: str) -> bool:
    return _TENANT.fullmatch(name) is not None


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    """What is stored of a key: its SHA-256, hex (a key is random, so no salt or stretching is
    needed: there is no dictionary to try)."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_prefix(key: str) -> str:
    return key[:PREFIX_CHARS]


def key_problem(key: str) -> str | None:
    """Why `key` cannot be a key (chosen values, like SLUICE_DEV_API_KEY, included), or None."""
    if not MIN_KEY_CHARS <= len(key) <= MAX_KEY_CHARS:
        return f"a key has {MIN_KEY_CHARS} to {MAX_KEY_CHARS} characters"
    if not key.isascii() or not key.isprintable() or " " in key:
        return "a key is printable ASCII without spaces"
    return None


def parse_scopes(names: Iterable[str]) -> tuple[str, ...]:
    """Scopes in their canonical order; ValueError naming an unknown one."""
    chosen = {name.strip().lower() for name in names if name.strip()}
    unknown = sorted(chosen - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r}: choose from {', '.join(SCOPES)}")
    if not chosen:
        raise ValueError(f"a key needs at least one scope: {', '.join(SCOPES)}")
    return tuple(scope for scope in SCOPES if scope in chosen)


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: a key's tenant and scopes."""

    tenant: str
    scopes: tuple[str, ...]
    key_prefix: str

    @property
    def admin(self) -> bool:
        return ADMIN in self.scopes

    def may(self, scope: str) -> bool:
        return self.admin or scope in self.scopes

    def sees(self, tenant: str | None) -> bool:
        """Whether this principal may see a resource of `tenant` (None: of no known tenant,
        such as a dead letter whose bytes are not a chunk)."""
        return self.admin or (tenant is not None and tenant == self.tenant)
