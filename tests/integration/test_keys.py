"""API keys against real PostgreSQL: only hashes are kept, a revoke holds at the next lookup, the
development key is made once; and how the API's key check behaves while the database is away
(a key the database confirmed keeps working for reads, nothing else does)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiohttp.test_utils import make_mocked_request
from sqlalchemy import Engine, text

from api.auth import KeyCheck
from streams.access import ADMIN, READ, SUBMIT, key_hash, parse_scopes
from streams.exceptions import DatabaseUnavailable, NotAuthenticated
from streams.sink.database import make_engine
from streams.sink.keys import create_key, ensure_key, find_key, list_keys, revoke_key
from streams.sink.tables import create_tables

NOBODY_LISTENS = "postgresql://postgres@127.0.0.1:1/test?connect_timeout=1"


@pytest.fixture
def keys_db(db: Engine) -> Engine:
    create_tables(db)
    return db


def test_a_key_is_kept_as_a_hash_and_named_by_its_prefix(keys_db: Engine) -> None:
    key, record = create_key(keys_db, "alice", (SUBMIT, READ), "ci")
    assert key.startswith("sluice_") and record.prefix == key[:15]
    with keys_db.connect() as connection:
        stored = connection.execute(text("SELECT * FROM sluice_api_keys")).mappings().one()
    assert stored["key_hash"] == key_hash(key) and key not in str(dict(stored))
    found = find_key(keys_db, key)
    assert found is not None and found.principal.tenant == "alice"
    assert found.principal.may(READ) and not found.principal.may(ADMIN)
    assert find_key(keys_db, key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert [r.prefix for r in list_keys(keys_db, "alice")] == [record.prefix]
    assert list_keys(keys_db, "bob") == []


def test_a_revoked_key_is_found_no_more_and_stays_revoked(keys_db: Engine) -> None:
    key, record = create_key(keys_db, "alice", (READ,))
    assert revoke_key(keys_db, record.prefix, tenant="bob") is None  # not bob's to revoke
    revoked = revoke_key(keys_db, record.prefix)
    assert revoked is not None and revoked.revoked_at is not None
    assert find_key(keys_db, key) is None
    again = revoke_key(keys_db, record.prefix)
    assert again is not None and again.revoked_at == revoked.revoked_at
    assert revoke_key(keys_db, "sluice_nothere0") is None


def test_the_development_key_is_made_once_and_a_revoke_holds(keys_db: Engine) -> None:
    chosen = "sluice_dev-key-chosen-by-the-person-000000"
    first = ensure_key(keys_db, chosen, "default", parse_scopes(["admin"]), "dev")
    assert ensure_key(keys_db, chosen, "default", (ADMIN,), "dev") == first
    assert len(list_keys(keys_db)) == 1
    revoke_key(keys_db, first.prefix)
    assert ensure_key(keys_db, chosen, "default", (ADMIN,), "dev").revoked_at is not None
    assert find_key(keys_db, chosen) is None
    with pytest.raises(ValueError, match="name another key"):
        ensure_key(keys_db, chosen[:15] + "but-another-value-0000000", "default", (ADMIN,), "dev")


def _request(key: str) -> object:
    return make_mocked_request("GET", "/api/batch/jobs", headers={"Authorization": f"Bearer {key}"})


def test_while_the_database_is_away_only_confirmed_keys_are_accepted(keys_db: Engine) -> None:
    good, _ = create_key(keys_db, "alice", (READ,))
    revoked, record = create_key(keys_db, "alice", (READ,))
    runtime = SimpleNamespace(engine=keys_db)
    check = KeyCheck(runtime)  # type: ignore[arg-type]

    async def lookups() -> None:
        assert (await check.principal(_request(good))).tenant == "alice"  # type: ignore[arg-type]
        assert (await check.principal(_request(revoked))).tenant == "alice"  # type: ignore[arg-type]
        revoke_key(keys_db, record.prefix)
        with pytest.raises(NotAuthenticated):  # at once: every lookup asks the database
            await check.principal(_request(revoked))  # type: ignore[arg-type]

        runtime.engine = make_engine(NOBODY_LISTENS, create=False)  # the database is away
        assert (await check.principal(_request(good))).tenant == "alice"  # type: ignore[arg-type]
        with pytest.raises(DatabaseUnavailable):  # the revoked one was forgotten: a 503
            await check.principal(_request(revoked))  # type: ignore[arg-type]
        unseen, _ = create_key(keys_db, "bob", (READ,))
        with pytest.raises(DatabaseUnavailable):
            await check.principal(_request(unseen))  # type: ignore[arg-type]

    asyncio.run(lookups())
