"""The API key table: create, find, list, revoke (what a key means: streams/access.py)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError

from streams.access import Principal, key_hash, key_prefix, new_key
from streams.sink.tables import api_keys

NEW_KEY_ATTEMPTS = 5  # a prefix taken already: draw again (8 random characters rarely meet)


@dataclass(frozen=True)
class KeyRecord:
    prefix: str
    tenant: str
    scopes: tuple[str, ...]
    name: str | None
    created_at: datetime
    revoked_at: datetime | None

    @property
    def principal(self) -> Principal:
        return Principal(self.tenant, self.scopes, self.prefix)


def _record(row: Any) -> KeyRecord:
    return KeyRecord(
        prefix=row.prefix,
        tenant=row.tenant,
        scopes=tuple(row.scopes.split(",")),
        name=row.name,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def _insert(
    engine: Engine, key: str, tenant: str, scopes: tuple[str, ...], name: str | None
) -> None:
    with engine.begin() as connection:
        connection.execute(
            api_keys.insert().values(
                key_hash=key_hash(key),
                prefix=key_prefix(key),
                tenant=tenant,
                scopes=",".join(scopes),
                name=name,
                created_at=datetime.now(UTC),
            )
        )


def create_key(
    engine: Engine, tenant: str, scopes: tuple[str, ...], name: str | None = None
) -> tuple[str, KeyRecord]:
    """A new key for `tenant`: its value (shown once, never stored) and its record."""
    for attempt in range(NEW_KEY_ATTEMPTS):
        key = new_key()
        try:
            _insert(engine, key, tenant, scopes, name)
        except IntegrityError:
            if attempt == NEW_KEY_ATTEMPTS - 1:
                raise
            continue
        found = find_key(engine, key)
        assert found is not None
        return key, found
    raise AssertionError("unreachable")


def ensure_key(
    engine: Engine, key: str, tenant: str, scopes: tuple[str, ...], name: str
) -> KeyRecord:
    """The key with this chosen value, created if it is not there (SLUICE_DEV_API_KEY). A key
    revoked earlier stays revoked."""
    existing = _by_hash(engine, key)
    if existing is None:
        # another worker may create it at the same moment (or its prefix is taken: said below)
        with contextlib.suppress(IntegrityError):
            _insert(engine, key, tenant, scopes, name)
        existing = _by_hash(engine, key)
        if existing is None:
            raise ValueError(f"the key's first characters {key_prefix(key)!r} name another key")
    return existing


def _by_hash(engine: Engine, key: str) -> KeyRecord | None:
    with engine.connect() as connection:
        row = connection.execute(
            select(api_keys).where(api_keys.c.key_hash == key_hash(key))
        ).first()
    return None if row is None else _record(row)


def find_key(engine: Engine, key: str) -> KeyRecord | None:
    """The key's record, or None when no key has this value or it was revoked."""
    record = _by_hash(engine, key)
    return None if record is None or record.revoked_at is not None else record


def list_keys(engine: Engine, tenant: str | None = None) -> list[KeyRecord]:
    """Every key (of `tenant`), revoked ones included, oldest first."""
    query = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.prefix)
    if tenant is not None:
        query = query.where(api_keys.c.tenant == tenant)
    with engine.connect() as connection:
        return [_record(row) for row in connection.execute(query)]


def revoke_key(engine: Engine, prefix: str, tenant: str | None = None) -> KeyRecord | None:
    """Revoke the key named by `prefix` (of `tenant`, when given); its record, or None when
    there is no such key. Revoking a revoked key changes nothing."""
    condition = api_keys.c.prefix == prefix
    if tenant is not None:
        condition &= api_keys.c.tenant == tenant
    with engine.begin() as connection:
        connection.execute(
            update(api_keys)
            .where(condition, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
        row = connection.execute(select(api_keys).where(condition)).first()
    return None if row is None else _record(row)
