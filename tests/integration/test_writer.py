"""What a writer process does with a chunk's bytes, in-process against real PostgreSQL: apply
once, answer the ledger's outcome to a redelivery, hold back a chunk sharing a parked key, and
classify what cannot be applied."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from streams.models import Chunk
from streams.processing.writer import Applied, ApplyFailed, Blocked, apply_raw
from streams.sink.database import make_engine
from streams.sink.sessions import end_abandoned_writers
from streams.wire.chunks import encode_chunk

OPTIONS = {"chunkSize": 100, "retryAttempts": 3, "validate": True, "stopOnError": False}


@pytest.fixture
def engine(schema_url: str) -> Iterator[Engine]:
    engine = make_engine(schema_url, pool_size=1)  # creates Sluice's tables in the schema
    yield engine
    engine.dispose()


def chunk_bytes(job_type: str = "user-import", *emails: str) -> tuple[str, bytes]:
    job_id = str(uuid.uuid4())
    records = [
        {"row": row, "fields": {"email": email, "name": f"User {row}"}, "error": None}
        for row, email in enumerate(emails, 1)
    ]
    chunk = Chunk(job_id, job_type, "t", 0, 0, 0, OPTIONS, records)
    return job_id, encode_chunk(chunk)


def users(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.scalars(text("SELECT email FROM users ORDER BY email")))


def test_a_chunk_is_applied_once_and_a_redelivery_gets_the_ledgers_outcome(
    engine: Engine,
) -> None:
    job_id, data = chunk_bytes("user-import", "a@example.com", "B@example.com", "not-an-email")
    first = apply_raw(data, engine)
    assert isinstance(first, Applied) and first.fresh
    assert (first.info.job_id, first.info.rows) == (job_id, [1, 2, 3])
    assert (first.result.successful, first.result.failed, first.result.created) == (2, 1, 2)
    again = apply_raw(data, engine)
    assert isinstance(again, Applied) and not again.fresh
    assert (again.result.successful, again.result.failed) == (2, 1)
    assert users(engine) == ["a@example.com", "b@example.com"]


def test_a_chunk_sharing_a_parked_key_is_held_back_and_writes_nothing(engine: Engine) -> None:
    _, data = chunk_bytes("user-import", "c@example.com", "D@Example.com")
    held = apply_raw(data, engine, frozenset({"d@example.com"}))
    assert isinstance(held, Blocked)
    assert held.keys == {"c@example.com", "d@example.com"}
    assert users(engine) == []
    assert isinstance(apply_raw(data, engine, frozenset({"x@example.com"})), Applied)


def test_bytes_that_are_no_chunk_are_poison_with_nothing_known(engine: Engine) -> None:
    with pytest.raises(ApplyFailed) as caught:
        apply_raw(b"\x00\x00\x00\x00\x63garbage", engine)
    assert caught.value.info is None and caught.value.keys is None
    assert (caught.value.failure.reason, caught.value.failure.retryable) == ("poison", False)


def test_an_unknown_job_type_is_poison_named_with_its_chunk(engine: Engine) -> None:
    job_id, data = chunk_bytes("no-such-type", "e@example.com")
    with pytest.raises(ApplyFailed) as caught:
        apply_raw(data, engine)
    assert caught.value.info is not None and caught.value.info.job_id == job_id
    assert caught.value.failure.error_class == "PoisonMessage"
    assert "no-such-type" in caught.value.failure.message
    assert caught.value.keys is None  # nothing to hold later chunks back for


def test_a_writer_session_stuck_in_a_transaction_past_the_timeout_is_ended(
    engine: Engine, schema_url: str
) -> None:
    """The session of a writer that is gone, holding locks, ended so other chunks go on."""
    engines = {
        name: make_engine(schema_url, pool_size=1, create=False, name=name)
        for name in ("sluice-writer-itest-424242", "someone-else", "sluice-writer-itest-434343")
    }
    held = []
    try:
        for name, holder in engines.items():
            if name == "sluice-writer-itest-434343":
                time.sleep(4)  # the first two have been in their transactions for longer
            connection = holder.connect()
            connection.execute(text("SELECT count(*) FROM users"))  # a transaction begins
            held.append(connection)
        ended = end_abandoned_writers(engine, "itest", older_than=3.0)
        assert len(ended) == 1
        # pg_terminate_backend signals the backend; it leaves pg_stat_activity a moment later
        deadline = time.monotonic() + 10
        while "sluice-writer-itest-424242" in (left := _sessions(engine)):
            assert time.monotonic() < deadline, left
            time.sleep(0.1)
        assert set(left) >= {"someone-else", "sluice-writer-itest-434343"}
    finally:
        for connection in held:
            connection.invalidate()
        for holder in engines.values():
            holder.dispose()


def _sessions(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(
            connection.scalars(
                text(
                    "SELECT application_name FROM pg_stat_activity "
                    "WHERE datname = current_database()"
                )
            )
        )
