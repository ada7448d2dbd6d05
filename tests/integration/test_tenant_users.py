"""Imported users belong to a tenant, on PostgreSQL and on SQLite: two tenants importing the
same emails each get their own rows; one tenant can neither overwrite another's row nor learn
from an outcome (created, updated, skipped, duplicate) that the other has it; a `users` table
made before tenants is migrated, its rows the default tenant's."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from streams.models import Chunk
from streams.processing.transaction import apply_once
from streams.sink.database import make_engine
from streams.sink.tables import create_tables

OPTIONS = {"chunkSize": 100, "retryAttempts": 3, "validate": True, "stopOnError": False}
ALICE, MALLORY = "alice", "mallory"


@pytest.fixture
def engine(any_database_url: str) -> Iterator[Engine]:
    engine = make_engine(any_database_url, pool_size=1)
    yield engine
    engine.dispose()


def import_users(
    engine: Engine, tenant: str, rows: list[tuple[str, str]], **options: Any
) -> dict[int, tuple[str, str | None]]:
    """One user-import chunk of `tenant`: each record's (outcome, reason), by row number."""
    records = [
        {"row": row, "fields": {"email": email, "name": name}, "error": None}
        for row, (email, name) in enumerate(rows, 1)
    ]
    job_id = str(uuid.uuid4())
    chunk = Chunk(job_id, "user-import", tenant, 0, 0, 0, {**OPTIONS, **options}, records)
    apply_once(engine, chunk)
    with engine.connect() as connection:
        found = connection.execute(
            text("SELECT row_no, outcome, reason FROM sluice_results WHERE job_id = :job"),
            {"job": job_id},
        )
        return {row: (outcome, reason) for row, outcome, reason in found}


def users_of(engine: Engine, tenant: str) -> dict[str, str]:
    with engine.connect() as connection:
        found = connection.execute(
            text("SELECT email, name FROM users WHERE tenant = :tenant"), {"tenant": tenant}
        )
        return dict(found.all())


def test_two_tenants_import_the_same_emails_into_rows_of_their_own(engine: Engine) -> None:
    alice = import_users(engine, ALICE, [("a@example.com", "Alice A"), ("b@example.com", "B")])
    assert alice == {1: ("created", None), 2: ("created", None)}
    # the same emails, one in another case: new users of mallory's, as if alice had none
    mallory = import_users(engine, MALLORY, [("A@Example.com", "Mallory A"), ("c@x.org", "C")])
    assert mallory == {1: ("created", None), 2: ("created", None)}
    assert users_of(engine, ALICE) == {"a@example.com": "Alice A", "b@example.com": "B"}
    assert users_of(engine, MALLORY) == {"a@example.com": "Mallory A", "c@x.org": "C"}


@pytest.mark.parametrize(
    "options", [{"updateDuplicates": True}, {"skipDuplicates": True}, {}], ids=str
)
def test_another_tenants_row_is_neither_overwritten_nor_revealed(
    engine: Engine, options: dict[str, Any]
) -> None:
    import_users(engine, ALICE, [("a@example.com", "Alice A")])
    outcomes = import_users(engine, MALLORY, [("a@example.com", "Mallory A")], **options)
    assert outcomes == {1: ("created", None)}  # not updated, skipped nor a duplicate
    assert users_of(engine, ALICE) == {"a@example.com": "Alice A"}
    # within one tenant, the duplicate handling is as before
    again = import_users(engine, MALLORY, [("a@example.com", "Mallory B")], **options)
    want = {
        "updateDuplicates": ("updated", None),
        "skipDuplicates": ("skipped", "duplicate"),
    }.get(next(iter(options), ""), ("failed", "duplicate"))
    assert again == {1: want}
    assert users_of(engine, ALICE) == {"a@example.com": "Alice A"}


OLD_USERS = (
    "CREATE TABLE users (id INTEGER PRIMARY KEY, email VARCHAR(254) NOT NULL UNIQUE, "
    "name VARCHAR(200) NOT NULL, country VARCHAR(2), age SMALLINT, "
    "signup_ts TIMESTAMP, created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, "
    "updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, batch_job_id VARCHAR(36))"
)


def test_a_users_table_from_before_tenants_becomes_the_default_tenants(
    schema_url: str, tmp_path: Path
) -> None:
    for url in (schema_url, f"sqlite:///{tmp_path / 'old.db'}"):
        engine = make_engine(url, pool_size=1, create=False)
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                connection.execute(
                    text(OLD_USERS.replace("INTEGER PRIMARY KEY", "SERIAL PRIMARY KEY"))
                )
            else:
                connection.execute(text(OLD_USERS))
            connection.execute(text("INSERT INTO users (email, name) VALUES ('a@x.org', 'Old')"))
        create_tables(engine)
        create_tables(engine)  # a second worker starting: nothing more to do
        assert users_of(engine, "default") == {"a@x.org": "Old"}
        import_users(engine, ALICE, [("a@x.org", "Alice")])
        assert users_of(engine, "default") == {"a@x.org": "Old"}
        assert users_of(engine, ALICE) == {"a@x.org": "Alice"}
        with pytest.raises(IntegrityError), engine.begin() as connection:  # still one per tenant
            connection.execute(text("INSERT INTO users (email, name) VALUES ('a@x.org', 'Twice')"))
        engine.dispose()
